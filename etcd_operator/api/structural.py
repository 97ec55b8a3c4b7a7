"""Checks a CRD schema against the structural-schema rules, and applies its defaults.

Both mirror what kube-apiserver does (apiextensions-apiserver's structural schema
validation and defaulting), so the generator and the unit tests can catch a schema
the server would reject, or defaults that disagree with the models', without a
server. The real server remains the final word (see tests/e2e).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from etcd_operator.api.schema import INT_OR_STRING, PRESERVE_UNKNOWN, VALIDATIONS, Schema

_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
_FORBIDDEN = ("$ref", "$defs", "allOf", "oneOf", "not", "nullable", "const", "definitions")


def structural_errors(schema: Schema, path: str = "") -> list[str]:
    """Every rule of a structural schema `schema` breaks, as `path: problem`."""
    errors: list[str] = []
    _check(schema, path or "<root>", errors, in_metadata=False)
    return errors


def _check(node: Schema, path: str, errors: list[str], *, in_metadata: bool) -> None:
    errors.extend(f"{path}: {key} is not allowed" for key in _FORBIDDEN if key in node)
    int_or_string = node.get(INT_OR_STRING) is True
    node_type = node.get("type")
    if int_or_string:
        if node_type is not None:
            errors.append(f"{path}: int-or-string must not set type")
        if node.get("anyOf") not in (None, [{"type": "integer"}, {"type": "string"}]):
            errors.append(f"{path}: int-or-string allows only anyOf [integer, string]")
    else:
        if node_type not in _TYPES:
            errors.append(f"{path}: type must be one of {sorted(_TYPES)}, got {node_type!r}")
        if "anyOf" in node:
            errors.append(f"{path}: anyOf is only allowed for int-or-string")
    if "description" in node and not isinstance(node["description"], str):
        errors.append(f"{path}: description must be a string")

    properties = node.get("properties", {})
    additional = node.get("additionalProperties")
    if properties and additional is not None:
        errors.append(f"{path}: properties and additionalProperties are mutually exclusive")
    if additional is not None and not isinstance(additional, dict):
        errors.append(f"{path}: additionalProperties must be a schema, not {additional!r}")
    if (properties or additional is not None) and node_type != "object":
        errors.append(f"{path}: properties need type object")
    if node_type == "array" and "items" not in node:
        errors.append(f"{path}: arrays need items")
    if "items" in node and node_type != "array":
        errors.append(f"{path}: items need type array")
    if node.get(PRESERVE_UNKNOWN) is not None and node.get(PRESERVE_UNKNOWN) is not True:
        errors.append(f"{path}: {PRESERVE_UNKNOWN} may only be true")
    for required in node.get("required", []):
        if required not in properties:
            errors.append(f"{path}: required field {required!r} is not a property")

    if "default" in node:
        if in_metadata:
            errors.append(f"{path}: defaults are not allowed in metadata")
        errors.extend(
            f"{path}: default: {problem}" for problem in value_errors(node, node["default"])
        )

    if node.get("x-kubernetes-list-type") == "map":
        item = node.get("items", {})
        keys = node.get("x-kubernetes-list-map-keys") or []
        if not keys:
            errors.append(f"{path}: list-type map needs x-kubernetes-list-map-keys")
        for key in keys:
            item_prop = item.get("properties", {}).get(key)
            if item_prop is None:
                errors.append(f"{path}: list map key {key!r} is not an item property")
            elif key not in item.get("required", []) and "default" not in item_prop:
                errors.append(f"{path}: list map key {key!r} must be required or defaulted")
    for rule in node.get(VALIDATIONS, []):
        if not rule.get("rule") or not (rule.get("message") or rule.get("messageExpression")):
            errors.append(f"{path}: each x-kubernetes-validations entry needs rule and message")

    for name, prop in properties.items():
        _check(prop, f"{path}.{name}", errors, in_metadata=in_metadata or name == "metadata")
    if isinstance(additional, dict):
        _check(additional, f"{path}.*", errors, in_metadata=in_metadata)
    if "items" in node:
        _check(node["items"], f"{path}[*]", errors, in_metadata=in_metadata)


def value_errors(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Where `value` breaks `schema`'s types, enums, bounds, patterns and unknown fields.

    Enough of OpenAPI validation to check defaults and examples; CEL rules are not
    evaluated.
    """
    here = path or "<value>"
    if schema.get(INT_OR_STRING):
        if not isinstance(value, int | str) or isinstance(value, bool):
            return [f"{here}: want an integer or a string, got {value!r}"]
        if (
            isinstance(value, str)
            and "pattern" in schema
            and not re.search(schema["pattern"], value)
        ):
            return [f"{here}: {value!r} does not match {schema['pattern']}"]
        return []
    expected = schema.get("type")
    checks: dict[str, Any] = {
        "object": dict,
        "array": list,
        "string": str,
        "boolean": bool,
        "integer": int,
        "number": int | float,
    }
    python_type = checks.get(expected or "")
    if python_type is None:
        return [f"{here}: schema has no type"]
    if not isinstance(value, python_type) or (
        isinstance(value, bool) and expected in ("integer", "number")
    ):
        return [f"{here}: want {expected}, got {value!r}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{here}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{here}: {value!r} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{here}: {value!r} is above the maximum {schema['maximum']}")
    if expected == "string":
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{here}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{here}: longer than {schema['maxLength']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{here}: shorter than {schema['minLength']}")
    if expected == "object":
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                errors.extend(value_errors(properties[key], item, f"{path}.{key}"))
            elif "additionalProperties" in schema:
                errors.extend(value_errors(schema["additionalProperties"], item, f"{path}.{key}"))
            elif not schema.get(PRESERVE_UNKNOWN):
                errors.append(f"{here}: unknown field {key!r} (the server would prune it)")
        errors.extend(
            f"{here}: missing required field {key!r}"
            for key in schema.get("required", [])
            if key not in value
        )
    if expected == "array":
        for index, item in enumerate(value):
            errors.extend(value_errors(schema["items"], item, f"{path}[{index}]"))
    return errors


def apply_defaults(schema: Schema, value: Any) -> Any:
    """`value` with the schema's defaults filled in, as the API server would do it.

    Defaults apply to absent fields of objects that are present (including objects
    that were themselves just defaulted), recursively.
    """
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _default(prop, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for item in value.values():
                _default(additional, item)
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(schema["items"], item)
