"""The ``rerankkit`` command line: one module per noun, each only calls the Python API."""
