"""The hand-written base under every generated OCSF model.

Construction is forgiving on purpose (as the published py-mdr was): nothing is validated, nested
objects and lists appear on first touch, unknown attributes are kept as extras. Strictness lives
in :func:`py_mdr.validate.validate`, which reports every problem at once with its path.

Each generated class carries its schema facts in ``__ocsf__`` (a :class:`ModelSpec`): names,
types, requirements, enums and constraints, nothing more. Object classes are imported lazily
through their dotted path, so importing one event class does not import the whole schema.
"""

from __future__ import annotations

import enum
import functools
import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

_PACKAGE = "py_mdr.ocsf_models"

# ``Attr.obj`` of the schema's free-form ``object`` type (``unmapped``): a plain dict.
GENERIC_OBJECT = "object"

# Default of object-typed attributes: the object is created on first touch (see __getattr__).
# Typed ``Any`` so that ``metadata: Metadata = LAZY`` reads as "always a Metadata" to type checkers.
LAZY: Any = None

# Requirement levels, as the schema spells them.
REQUIRED = "required"
RECOMMENDED = "recommended"
OPTIONAL = "optional"


class OCSFIntEnum(enum.IntEnum):
    """An OCSF ``*_id`` enum; ``caption`` is the schema's caption of the value."""

    __captions__: ClassVar[Mapping[int, str]] = {}

    @property
    def caption(self) -> str:
        return type(self).__captions__[int(self)]


class OCSFStrEnum(str, enum.Enum):
    """One of the few OCSF string-valued enums (TLP, HTTP method, CVSS depth)."""

    __captions__: ClassVar[Mapping[str, str]] = {}

    @property
    def caption(self) -> str:
        return type(self).__captions__[str(self.value)]


EnumType = type[enum.Enum]


@dataclass(frozen=True)
class Attr:
    """Schema facts for one attribute.

    ``type`` is an OCSF type name (``string_t``) or an object name (``product``); ``obj`` is the
    dotted path of the object's model (``objects.product:Product``), ``enum`` the enum class, and
    ``sibling`` the caption attribute that goes with an ``*_id`` attribute.
    """

    type: str
    requirement: str = OPTIONAL
    is_array: bool = False
    obj: str | None = None
    enum: EnumType | None = None
    sibling: str | None = None
    profile: str | None = None
    json_name: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """Schema facts for one class or object; ``uid`` is ``None`` for objects."""

    name: str
    caption: str
    attributes: Mapping[str, Attr]
    uid: int | None = None
    category_uid: int | None = None
    category_name: str | None = None
    constraints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        return self.uid is not None

    @property
    def url(self) -> str:
        kind = "classes" if self.is_event else "objects"
        return f"https://schema.ocsf.io/1.3.0/{kind}/{self.name}"


@functools.cache
def load_model(path: str) -> type[OCSFModel]:
    """Import ``"objects.product:Product"`` relative to the models package (once)."""
    module_name, _, class_name = path.partition(":")
    module = importlib.import_module(f"{_PACKAGE}.{module_name}")
    model: type[OCSFModel] = getattr(module, class_name)
    return model


_EMPTY_SPEC = ModelSpec(name="object", caption="Object", attributes={})


class OCSFModel(BaseModel):
    """Base of every generated model: a pydantic model with forgiving, fast construction."""

    model_config = ConfigDict(
        extra="allow",
        defer_build=True,
        populate_by_name=True,
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        revalidate_instances="never",
    )

    __ocsf__: ClassVar[ModelSpec] = _EMPTY_SPEC
    # python attribute name for each JSON name that is a Python keyword ("class" -> "class_")
    __ocsf_aliases__: ClassVar[Mapping[str, str]] = {}

    def __init__(self, /, **data: Any) -> None:
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        cls = type(self)
        attributes = cls.__ocsf__.attributes
        aliases = cls.__ocsf_aliases__
        for key, value in data.items():
            name = aliases.get(key, key)
            attr = attributes.get(name)
            if attr is None:
                extra[key] = value
            elif attr.obj is not None and value is not None:
                values[name] = _coerce_object(attr, value)
            else:
                values[name] = value
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "__pydantic_fields_set__", set(values))
        object.__setattr__(self, "__pydantic_extra__", extra)
        object.__setattr__(self, "__pydantic_private__", None)

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes missing from __dict__: unset fields and extras.
        cls = type(self)
        attr = cls.__ocsf__.attributes.get(name)
        if attr is None:
            renamed = cls.__ocsf_aliases__.get(name)
            if renamed is not None:  # "from" or py-mdr 0.7's "_from" for the field from_
                return getattr(self, renamed)
            return super().__getattr__(name)  # type: ignore[misc]  # extras, or AttributeError
        if attr.is_array:
            value: Any = []
        elif attr.obj == GENERIC_OBJECT:
            value = {}
        elif attr.obj is not None:
            value = load_model(attr.obj)()
        else:
            return None
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # py-mdr 0.7 field names (``_from``) land on the OCSF attribute, not in a private slot
        super().__setattr__(type(self).__ocsf_aliases__.get(name, name), value)

    def validate_event(self) -> list[Any]:
        """Every schema problem of this model, with attribute paths (see ``py_mdr.validate``)."""
        from py_mdr.validate import validate

        return validate(self)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready OCSF form: empties pruned, enums as ints, derived values filled."""
        from py_mdr.serialize import to_dict

        return to_dict(self)

    def as_dict(self, remove_empty: bool = True) -> dict[str, Any]:
        """:meth:`to_dict` under py-mdr 0.7's name. Empty values are always left out, whatever
        ``remove_empty`` says: OCSF and MDR read an empty value as an absent one."""
        return self.to_dict()

    def model_dump(self, **options: Any) -> dict[str, Any]:
        """The complete OCSF form, as :meth:`to_dict`: pydantic's own dump would leave out the
        derived values (``class_uid``, ``type_uid``, ``metadata.version``) and spell ``class``
        as ``class_``. ``include`` and ``exclude`` apply; the other options change nothing, as
        the form is already JSON-ready, aliased and without empty values."""
        return _select(self.to_dict(), options.get("include"), options.get("exclude"))

    def model_dump_json(self, **options: Any) -> str:
        """:meth:`model_dump` as JSON text; ``indent`` and ``ensure_ascii`` apply."""
        from py_mdr.serialize import dumps

        data = self.model_dump(**options)
        indent, ensure_ascii = options.get("indent"), bool(options.get("ensure_ascii"))
        if indent is None and not ensure_ascii:
            return dumps(data).decode()
        return json.dumps(data, indent=indent, ensure_ascii=ensure_ascii)

    @classmethod
    def model_rebuild(
        cls,
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Mapping[str, Any] | None = None,
    ) -> bool | None:
        """Make the lazily imported object classes visible to pydantic before it builds."""
        _import_closure(cls)
        return super().model_rebuild(
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=_parent_namespace_depth,
            _types_namespace=_types_namespace,
        )


def _select(data: dict[str, Any], include: Any, exclude: Any) -> dict[str, Any]:
    """pydantic's ``include`` / ``exclude`` (a set of names, or a dict of nested selections)
    applied to a dumped dict; Python names (``class_``) count as their OCSF names."""
    if include is not None:
        wanted = {_ocsf_name(k): v for k, v in _selection(include).items()}
        data = {
            k: _select(v, wanted[k], None) if isinstance(v, dict) and wanted[k] is not True else v
            for k, v in data.items()
            if k in wanted
        }
    if exclude is not None:
        dropped = {_ocsf_name(k): v for k, v in _selection(exclude).items()}
        data = {
            k: _select(v, None, dropped[k]) if isinstance(v, dict) and k in dropped else v
            for k, v in data.items()
            if dropped.get(k) is not True
        }
    return data


def _selection(spec: Any) -> dict[Any, Any]:
    if isinstance(spec, Mapping):
        return {k: (True if v is True or v is Ellipsis else v) for k, v in spec.items()}
    return dict.fromkeys(spec, True)


def _ocsf_name(name: Any) -> Any:
    return name[:-1] if isinstance(name, str) and name.endswith("_") else name


def _coerce_object(attr: Attr, value: Any) -> Any:
    """Turn nested dicts into models so ``event.metadata.product`` works after ``Model(**d)``."""
    assert attr.obj is not None
    if attr.is_array and isinstance(value, list) and attr.obj != GENERIC_OBJECT:
        if any(isinstance(item, dict) for item in value):
            model = load_model(attr.obj)
            return [model(**item) if isinstance(item, dict) else item for item in value]
        return value
    if isinstance(value, dict) and attr.obj != GENERIC_OBJECT:
        return load_model(attr.obj)(**value)
    return value


def _import_closure(root: type[OCSFModel]) -> None:
    """Import every object model reachable from ``root`` and publish it in each module's globals.

    The generated modules import object classes only for type checkers; pydantic needs them at
    run time when it builds a schema (``model_dump``, ``model_json_schema``).
    """
    seen: set[type[OCSFModel]] = set()
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        module_globals = vars(sys.modules[model.__module__])
        for attr in model.__ocsf__.attributes.values():
            if attr.obj is None or attr.obj == GENERIC_OBJECT:
                continue
            child = load_model(attr.obj)
            module_globals.setdefault(child.__name__, child)
            todo.append(child)


def find_cycle(root: object, limit: int = 100_000) -> str | None:
    """Where a model (or dict, or list) contains itself, as ``Process.parent_process -> Process``.

    Walks models' attributes and extras, dicts and lists depth first, at most ``limit`` values;
    None when no value is its own ancestor. Serializing recurses, so without this a cycle would
    only show as a bare ``RecursionError``.
    """
    # each frame: (value, its path, children not yet visited)
    on_path: dict[int, int] = {id(root): 0}
    stack: list[tuple[object, str, list[tuple[str, object]]]] = [
        (root, _label(root), _children(root))
    ]
    seen = 0
    while stack and seen < limit:
        _, path, todo = stack[-1]
        if not todo:
            value = stack.pop()[0]
            on_path.pop(id(value), None)
            continue
        step, child = todo.pop()
        seen += 1
        here = f"{path}{step}"
        depth = on_path.get(id(child))
        if depth is not None:
            return f"{here} -> {stack[depth][1]}"
        children = _children(child)
        if children:
            on_path[id(child)] = len(stack)
            stack.append((child, here, children))
    return None


def _label(value: object) -> str:
    return type(value).__name__ if isinstance(value, OCSFModel) else "event"


def _children(value: object) -> list[tuple[str, object]]:
    if isinstance(value, OCSFModel):
        items = list(value.__dict__.items()) + list((value.__pydantic_extra__ or {}).items())
        return [(f".{key}", item) for key, item in items if item is not None]
    if isinstance(value, Mapping):
        return [(f"[{key!r}]", item) for key, item in value.items() if item is not None]
    if isinstance(value, (list, tuple)):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    return []
