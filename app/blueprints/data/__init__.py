from app.blueprints.data.views import bp

__all__ = ["bp"]
