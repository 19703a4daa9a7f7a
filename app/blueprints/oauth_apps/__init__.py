from app.blueprints.oauth_apps.views import bp

__all__ = ["bp"]
