"""Load YAML data files validated by a pydantic model, naming the line at fault."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class DataFileError(Exception):
    """A YAML data file (rules, catalogue) is invalid; the message names file and line."""


def load_model(path: Path, model: type[Model]) -> Model:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataFileError(f"{path}: cannot read ({error.strerror})") from None
    return parse_model(text, model, str(path))


def parse_model(text: str, model: type[Model], filename: str) -> Model:
    return parse_model_with_nodes(text, model, filename)[0]


def load_model_with_nodes(path: Path, model: type[Model]) -> tuple[Model, yaml.Node]:
    """The model and the YAML node tree, for checks that must name a line themselves."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataFileError(f"{path}: cannot read ({error.strerror})") from None
    return parse_model_with_nodes(text, model, str(path))


def parse_model_with_nodes(text: str, model: type[Model], filename: str, named=None):
    """`named(data, location)` may prefix each error with what it is about (e.g. the
    question an error is in), from the raw data."""
    try:
        root, data = parse_with_nodes(text)
    except yaml.YAMLError as error:
        raise DataFileError(f"{filename}: {error}") from None
    if not isinstance(data, dict):
        raise DataFileError(f"{filename}: line 1: expected a mapping")
    try:
        return model.model_validate(data), root
    except ValidationError as error:
        prefix = (lambda location: named(data, location)) if named else None
        raise DataFileError(describe(error, root, filename, prefix)) from None
    except ValueError as error:  # cross-field checks raised by the model
        raise DataFileError(f"{filename}: {error}") from None


# LibYAML when installed: one parse gives both the node tree (for line numbers) and the
# data, about 20x faster than composing and loading again with the pure-Python loader.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_with_nodes(text: str) -> tuple[yaml.Node | None, object]:
    """The YAML node tree and the data built from it, from a single parse."""
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


def describe(error: ValidationError, root: yaml.Node, filename: str, prefix=None) -> str:
    lines = []
    for problem in error.errors():
        location = problem["loc"]
        where = ".".join(str(part) for part in location) or "file"
        about = prefix(location) if prefix else ""
        line = line_of(root, location)
        lines.append(f"{filename}: line {line}: {about}{where}: {problem['msg']}")
    return "\n".join(lines)


def line_of(node: yaml.Node, location: tuple) -> int:
    """The 1-based line of the deepest YAML node an error location reaches."""
    for part in location:
        child = _child(node, part)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None
