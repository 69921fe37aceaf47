"""Every request handler, one module per API.

Importing this package imports none of them: ``kbroker.registry.API_TABLE`` names each
key's module, and ``kbroker.registry.load_handler`` imports it on the key's first request
(start-up time).  A new handler module needs a row there.
"""
