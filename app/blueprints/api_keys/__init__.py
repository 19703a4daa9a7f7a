from app.blueprints.api_keys.views import bp

__all__ = ["bp"]
