"""Payment systems behind the interfaces that ``billing`` defines.

Each processor is one module here; :mod:`processors.registry` finds them by name, so
billing asks for ``get_processor("simulator")`` and never imports a processor itself.
"""
