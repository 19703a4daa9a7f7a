from app.blueprints.sso.settings import bp as settings_bp
from app.blueprints.sso.views import bp

__all__ = ["bp", "settings_bp"]
