from app.blueprints.audit.views import bp

__all__ = ["bp"]
