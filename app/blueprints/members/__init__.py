from app.blueprints.members.views import bp

__all__ = ["bp"]
