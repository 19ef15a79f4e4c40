"""The vendoring script keeps the used operations and what they reference."""

from __future__ import annotations

from tests.fakegithub.vendor import subset

SPEC = {
    "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
    "paths": {
        "/a/{id}": {
            "parameters": [{"$ref": "#/components/parameters/id"}],
            "get": {"responses": {"200": {"$ref": "#/components/responses/thing"}},
                    "examples": {"big": {}}},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/unused": {"get": {"responses": {"200": {"$ref": "#/components/responses/other"}}}},
    },
    "components": {
        "parameters": {"id": {"name": "id", "in": "path", "schema": {"type": "integer"}}},
        "responses": {
            "thing": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/thing"}}}},
            "other": {"description": "never kept"},
        },
        "schemas": {
            "thing": {"properties": {"owner": {"$ref": "#/components/schemas/user"}},
                      "example": {"owner": "x"}},
            "user": {"properties": {"friend": {"$ref": "#/components/schemas/user"}}},
            "unrelated": {"type": "string"},
        },
    },
}


def test_subset_keeps_operations_and_transitive_components_only() -> None:
    result = subset(SPEC, [("get", "/a/{id}")])
    assert list(result["paths"]) == ["/a/{id}"]
    assert set(result["paths"]["/a/{id}"]) == {"get", "parameters"}
    assert "examples" not in result["paths"]["/a/{id}"]["get"]
    assert set(result["components"]["schemas"]) == {"thing", "user"}  # recursive ref is fine
    assert set(result["components"]["responses"]) == {"thing"}
    assert "example" not in result["components"]["schemas"]["thing"]
    assert result["openapi"] == "3.0.3"
