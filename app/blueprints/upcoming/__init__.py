from app.blueprints.upcoming.views import bp

__all__ = ["bp"]
