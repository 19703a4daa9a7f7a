from app.blueprints.import_templates.views import bp

__all__ = ["bp"]
