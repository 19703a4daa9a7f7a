"""Request and response schemas of the REST API, one module per resource.

``common`` holds what every resource shares (the problem+json body, list envelopes,
safe text and datetime fields); ``records`` generates the core records' schemas from
the services' declarations.
"""
