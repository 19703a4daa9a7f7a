from app.blueprints.health.views import bp

__all__ = ["bp"]
