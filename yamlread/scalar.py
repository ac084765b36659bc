"""One composed YAML scalar node -> its Python value, or a one-line reason it cannot be read.

The reader walks composed nodes so that every problem can name its line and column; it turns
each scalar into a value here.
PyYAML's constructors fail in assorted ways on explicitly tagged bad data (an unknown tag,
``!!int abc``, ``!!binary`` that is not base64, ``!!timestamp x``), and a reader must turn
every one of them into its own located error, never a traceback.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["scalar_value"]

_TAG = "tag:yaml.org,2002:"


def scalar_value(node: yaml.ScalarNode) -> Any:
    """The value PyYAML's safe loader builds for ``node``, its explicit tag included.

    Raises ``ValueError`` whose message says in one line why the value cannot be read.
    """
    # A fresh constructor per scalar: cheap (well under a microsecond), and a failed
    # construction leaves the node in a constructor's recursion guard, which would misreport
    # a later alias to it as "unconstructable recursive node".
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except yaml.YAMLError as exc:
        raise ValueError(getattr(exc, "problem", None) or str(exc).splitlines()[0]) from exc
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError, IndexError) as exc:
        # `!!timestamp x` is an AttributeError, `!!bool x` a KeyError, `!!int x` a ValueError.
        raise ValueError(f"it is not a valid {node.tag.replace(_TAG, '!!')}") from exc
