from app.blueprints.jobs.views import bp

__all__ = ["bp"]
