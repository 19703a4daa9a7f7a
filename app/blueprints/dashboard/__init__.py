from app.blueprints.dashboard.views import bp

__all__ = ["bp"]
