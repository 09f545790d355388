"""YAML as config files mean it: PyYAML's safe loader without YAML 1.1's base-60 numbers.

YAML 1.1 reads ``1:4`` as the integer 64 (and ``1:30.5`` as 90.5); YAML 1.2 dropped that, and
a config means the text: ``distributed.nnodes: 1:4`` is an elastic range of 1 to 4 nodes, not
64 nodes. Everything else loads exactly as ``yaml.safe_load`` does::

    load_yaml("nnodes: 1:4")   # {'nnodes': '1:4'}
"""

from __future__ import annotations

from typing import Any

import yaml


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader whose colon-separated "numbers" stay text."""


def _number_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if isinstance(text, str) and ":" in text:
        return text
    if node.tag.endswith(":int"):
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    return yaml.SafeLoader.construct_yaml_float(loader, node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _number_or_text)
_ConfigLoader.add_constructor("tag:yaml.org,2002:float", _number_or_text)


def load_yaml(text: str) -> Any:
    """Parse ``text`` like ``yaml.safe_load``, except that ``1:4`` stays the string ``"1:4"``."""
    return yaml.load(text, Loader=_ConfigLoader)  # noqa: S506 - a SafeLoader subclass
