"""The optional C loops of the log cleaner (log/_cleaner_scan.c); everything else is in
pyproject.toml.  ``optional=True``: without a C compiler the install still succeeds and
``kbroker.log.cleaner_scan`` uses its Python loops."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kbroker.log._cleaner_scan",
            sources=["log/_cleaner_scan.c"],
            optional=True,
        )
    ]
)
