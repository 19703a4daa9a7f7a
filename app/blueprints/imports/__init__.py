from app.blueprints.imports.views import bp

__all__ = ["bp"]
