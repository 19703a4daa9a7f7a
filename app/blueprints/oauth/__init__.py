from app.blueprints.oauth.views import bp

__all__ = ["bp"]
