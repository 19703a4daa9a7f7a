"""Request parsing for the API: webargs' Flask parser, made safe for any body.

``json.loads`` raises ValueError (not JSONDecodeError) for an integer of more than
4,300 digits and RecursionError for deeply nested arrays; webargs catches only
JSONDecodeError, so either body would answer 500. Here every undecodable body is a
400 problem saying so. API resources use this module's ``Blueprint``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import flask_smorest
from webargs.flaskparser import FlaskParser

from app.blueprints.api.schemas.common import PROBLEM_JSON, ProblemSchema
from app.errors import DomainError

# Problem answers name the schema (apispec resolves the name to the same $ref) instead of passing the class:
# flask-smorest deep-copies every schema instance a view's doc holds at each decorator it stacks, so a class
# here cost a ProblemSchema copy per status per layer per view: ~7 MB resident, kept for the process.
PROBLEM_SCHEMA = ProblemSchema.__name__


class MalformedBody(DomainError):
    status_code = 400


class SafeParser(FlaskParser):
    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise  # webargs turns these into its own 400
        except (ValueError, RecursionError) as exc:
            self._handle_invalid_json_error(exc, req)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise MalformedBody(f"The request body is not valid JSON ({type(error).__name__}).") from error


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = SafeParser()

    def problems(self, descriptions: Mapping[int, str], *statuses: int) -> Callable:
        """Document the problem+json answers a view can give, each with its ``descriptions[status]``."""

        def decorate(view: Callable) -> Callable:
            for status in statuses:
                view = self.alt_response(status, schema=PROBLEM_SCHEMA, description=descriptions[status],
                                         content_type=PROBLEM_JSON)(view)
            return view

        return decorate
