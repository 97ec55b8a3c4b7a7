"""pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

pydantic describes a model in JSON Schema 2020-12; a CRD needs the structural
subset of OpenAPI v3 (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
The conversion:

- `$ref`s are inlined (the API server rejects them);
- `Optional[X]` (`anyOf: [X, {type: null}]`) becomes plain X: an absent field is
  how Kubernetes spells "unset", so nothing is marked nullable;
- free-form objects (`dict[str, Any]`) get `x-kubernetes-preserve-unknown-fields`;
- `additionalProperties: false` (from `extra="forbid"`) and `title` are dropped;
- int-or-string quantities keep the one `anyOf` form structural schemas allow.

Anything else the conversion does not understand raises, rather than producing a
schema the API server would reject or silently weaken.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

Schema = dict[str, Any]

INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
VALIDATIONS = "x-kubernetes-validations"
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_DROPPED = {"title", "examples"}
# Keys in the order they are written, for readable and stable YAML.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "anyOf",
    INT_OR_STRING,
    "properties",
    "required",
    "additionalProperties",
    "items",
    PRESERVE_UNKNOWN,
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    VALIDATIONS,
)
_KNOWN_KEYS = {*_KEY_ORDER, "$ref", "allOf", "const", "$defs", "additionalProperties"}


class SchemaConversionError(ValueError):
    """The model uses a JSON Schema feature with no structural equivalent."""


def model_schema(model: type[BaseModel]) -> Schema:
    """The structural schema of a model, as used inside a CRD."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, path=model.__name__)


def _resolve(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    """Inline `$ref` and single-element `allOf`, siblings of the reference winning."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref is None and "allOf" in node:
        all_of = node.pop("allOf")
        if len(all_of) != 1:
            raise SchemaConversionError(f"{path}: allOf with {len(all_of)} members")
        node = _merge(_resolve(all_of[0], defs, path), node)
    if ref is not None:
        name = ref.removeprefix("#/$defs/")
        if name not in defs:
            raise SchemaConversionError(f"{path}: unresolved reference {ref}")
        node = _merge(_resolve(defs[name], defs, path), node)
    return node


def _merge(base: Schema, over: Schema) -> Schema:
    """`over`'s keys win, except CEL rules, which both contribute."""
    merged = {**base, **over}
    rules = [*base.get(VALIDATIONS, []), *over.get(VALIDATIONS, [])]
    if rules:
        merged[VALIDATIONS] = rules
    return merged


def _strip_null(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    any_of = node.get("anyOf")
    if not any_of:
        return node
    non_null = [option for option in any_of if option.get("type") != "null"]
    if len(non_null) == len(any_of):
        return node
    node = {key: value for key, value in node.items() if key != "anyOf"}
    if "default" in node and node["default"] is None:
        del node["default"]
    if len(non_null) == 1:
        # Siblings (description, default, extensions) win over the referenced type.
        return _merge(_resolve(non_null[0], defs, path), node)
    node["anyOf"] = non_null
    return node


def _convert(node: Schema, defs: dict[str, Schema], path: str) -> Schema:
    node = _strip_null(_resolve(node, defs, path), defs, path)
    unknown = set(node) - _KNOWN_KEYS - _DROPPED
    if unknown:
        raise SchemaConversionError(f"{path}: unsupported schema keys {sorted(unknown)}")
    out: Schema = {key: value for key, value in node.items() if key not in _DROPPED}

    if "const" in out:
        out["enum"] = [out.pop("const")]
        out.setdefault("type", "string")

    if out.get(INT_OR_STRING):
        out.pop("type", None)
        any_of = out.get("anyOf", [])
        if sorted(option.get("type", "") for option in any_of) not in ([], ["integer", "string"]):
            raise SchemaConversionError(f"{path}: int-or-string with anyOf {any_of}")
        out["anyOf"] = list(_INT_OR_STRING_ANY_OF)
    elif "anyOf" in out:
        raise SchemaConversionError(f"{path}: unions are not structural: {out['anyOf']}")

    additional = out.pop("additionalProperties", None)
    if additional is True or additional == {}:
        out[PRESERVE_UNKNOWN] = True
    elif isinstance(additional, dict):
        out["additionalProperties"] = _convert(additional, defs, f"{path}.*")

    if "properties" in out:
        out["properties"] = {
            name: _convert(prop, defs, f"{path}.{name}") for name, prop in out["properties"].items()
        }
    if "items" in out:
        out["items"] = _convert(out["items"], defs, f"{path}[]")
    if out.get("type") == "object" and not (
        "properties" in out or "additionalProperties" in out or out.get(PRESERVE_UNKNOWN)
    ):
        out[PRESERVE_UNKNOWN] = True
    return ordered(out)


def ordered(node: Schema) -> Schema:
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(rank))))
