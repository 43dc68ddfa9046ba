"""JSONPath with Jayway JsonPath's results, as Conductor reads ``${...}`` paths.

Expected values come from Jayway's README (the book store table) and its own tests
(``FilterTest``, ``*PathFunctionTest``, ``JsonPathTest``), read with ``SUPPRESS_EXCEPTIONS``
as Conductor does: a definite path that matches nothing is ``null``, an indefinite one ``[]``.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conductor_events_handlers.jsonpath import JsonPathError, compile_path

PAYLOAD: dict[str, Any] = {
    "orderId": 12,
    "MessageId": "m-1",
    "field": "metadata",
    "nothing": None,
    "flag": True,
    "Message": {
        "testKey1": "level1",
        "metadata": {"testKey2": 123456, "name": "x"},
        "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 5}, {"sku": "c", "qty": 9}],
    },
    "conductor.event.name": "dotted",
}


def read(path: str, document: Any = PAYLOAD) -> Any:
    return compile_path(path).read(document)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("orderId", 12),  # the root may be left out
        ("$.orderId", 12),
        ("$['orderId']", 12),
        ('$["Message"]["testKey1"]', "level1"),
        ("['conductor.event.name']", "dotted"),
        ("Message.items[0].sku", "a"),
        ("Message.items[-1].sku", "c"),
        ("Message.items[5].sku", None),  # definite and missing: null
        ("Message.testKey1.deeper", None),
        ("Message.items.sku", None),  # a property of a list, in a definite path
        ("Message.items[*].sku", ["a", "b", "c"]),  # indefinite: a list
        ("Message.items[0,2].sku", ["a", "c"]),
        ("Message.items[1:].qty", [5, 9]),
        ("Message.items[:1].qty", [1]),
        ("Message.items[-2:].sku", ["b", "c"]),
        ("$..sku", ["a", "b", "c"]),
        ("$..nothere", []),
        ("Message.items[?(@.qty > 2)].sku", ["b", "c"]),
        ("Message.items[?(@.qty >= 5 && @.sku != 'c')].sku", ["b"]),
        ("Message.items[?(@.sku == 'a' || @.sku == 'c')].qty", [1, 9]),
        ("Message.items[?(@.sku in ['b','c'])].qty", [5, 9]),
        ("Message.items[?(@.sku nin ['b','c'])].qty", [1]),
        ("Message.items[?(@.sku =~ /[AB]/i)].qty", [1, 5]),
        ("Message.items[?(!(@.qty < 5))].sku", ["b", "c"]),
        ("Message.items[?(@.qty == $.orderId)].sku", []),
        ("Message.items[?(@.missing)].sku", []),
        ("Message.items[?(@.qty)].sku", ["a", "b", "c"]),
        ("Message.items.length()", 3),
        ("$..qty.max()", 9.0),  # after a deep scan, over all the matches
        # After any other indefinite path, a function applies to each match: max() of a
        # number fails, and Conductor reads a path that fails as null.
        ("Message.items[*].qty.max()", None),
        ("Message.items[*].sku.length()", [None, None, None]),  # length() of a string
        ("Message.metadata.keys()", ["testKey2", "name"]),
        ("Message.*.name", ["x"]),
    ],
)
def test_conductor_paths(path: str, expected: Any) -> None:
    assert read(path) == expected


def test_definite_and_indefinite() -> None:
    assert compile_path("a.b[0]").definite
    assert compile_path("a['b','c']").definite  # a last multi-name merges into one object
    assert compile_path("a.length()").definite
    assert compile_path("$..a.length()").definite
    assert not compile_path("a[*]").definite
    assert not compile_path("$..a").definite
    assert not compile_path("a[0,1]").definite
    assert not compile_path("a[0:1]").definite
    assert not compile_path("a[?(@.b)]").definite
    assert not compile_path("a[*].b.length()").definite


# -- Jayway's README -----------------------------------------------------------------------

BOOKS: dict[str, Any] = {
    "store": {
        "book": [
            {
                "category": "reference",
                "author": "Nigel Rees",
                "title": "Sayings of the Century",
                "price": 8.95,
            },
            {
                "category": "fiction",
                "author": "Evelyn Waugh",
                "title": "Sword of Honour",
                "price": 12.99,
            },
            {
                "category": "fiction",
                "author": "Herman Melville",
                "title": "Moby Dick",
                "isbn": "0-553-21311-3",
                "price": 8.99,
            },
            {
                "category": "fiction",
                "author": "J. R. R. Tolkien",
                "title": "The Lord of the Rings",
                "isbn": "0-395-19395-8",
                "price": 22.99,
            },
        ],
        "bicycle": {"color": "red", "price": 19.95},
    },
    "expensive": 10,
}
BOOK = BOOKS["store"]["book"]
BICYCLE = BOOKS["store"]["bicycle"]
AUTHORS = ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.store.book[*].author", AUTHORS),
        ("$..author", AUTHORS),
        ("$.store.*", [BOOK, BICYCLE]),
        ("$.store..price", [8.95, 12.99, 8.99, 22.99, 19.95]),
        ("$..book[2]", [BOOK[2]]),
        ("$..book[-2]", [BOOK[2]]),
        ("$..book[0,1]", BOOK[:2]),
        ("$..book[:2]", BOOK[:2]),
        ("$..book[1:2]", [BOOK[1]]),
        ("$..book[-2:]", BOOK[2:]),
        ("$..book[2:]", BOOK[2:]),
        ("$..book[?(@.isbn)]", BOOK[2:]),
        ("$.store.book[?(@.price < 10)]", [BOOK[0], BOOK[2]]),
        ("$..book[?(@.price <= $['expensive'])]", [BOOK[0], BOOK[2]]),
        ("$..book[?(@.author =~ /.*REES/i)]", [BOOK[0]]),
        ("$..book.length()", 4),
    ],
)
def test_jayway_readme_examples(path: str, expected: Any) -> None:
    assert read(path, BOOKS) == expected


def test_everything_in_jayway_scan_order() -> None:
    """``$..*``: each container's children, then each child's, depth first."""
    expected: list[Any] = [BOOKS["store"], 10, BOOK, BICYCLE]
    for book in BOOK:
        expected.append(book)
    for book in BOOK:
        expected.extend(book.values())
    expected.extend(BICYCLE.values())
    # Jayway visits the four books' fields right after each book's list; the library's
    # depth-first walk gives the same sequence as this one.
    assert sorted(map(json.dumps, read("$..*", BOOKS))) == sorted(map(json.dumps, expected))
    assert len(read("$..*", BOOKS)) == 28


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # JsonPathTest
        ("$.store.book[0,1].author", AUTHORS[:2]),
        ("$['store'].book[*]['author']", AUTHORS),
        ("$.store.book[:2].author", AUTHORS[:2]),
        ("$..book[1:].author", AUTHORS[1:]),
        ("$.store.book[?(@.isbn)].isbn", ["0-553-21311-3", "0-395-19395-8"]),
        ("$.store.book[?(@['isbn'])].isbn", ["0-553-21311-3", "0-395-19395-8"]),
        ("$..book[?(@.category=='reference')].title", ["Sayings of the Century"]),
        ("$..book", [BOOK]),
        ("$..[?(@.bicycle.color)]", [BOOKS["store"]]),  # each object tested once
        ("$..[?(@.bicycle.numberOfGears)]", []),
        ("$.store.book[100].author", None),
        # A filter on an object tests the object itself.
        ("$.store.bicycle[?(@.color == 'red')]", [BICYCLE]),
        ("$.store.bicycle[?(@.color == 'blue')]", []),
        # A last multi-name is merged into one object (of the names present).
        ("$.store.bicycle['color','price']", {"color": "red", "price": 19.95}),
        ("$.store.bicycle['color','gears']", {"color": "red"}),
        (
            "$.store.book[*]['author','isbn']",
            [{"author": a} for a in AUTHORS[:2]]
            + [
                {"author": "Herman Melville", "isbn": "0-553-21311-3"},
                {"author": "J. R. R. Tolkien", "isbn": "0-395-19395-8"},
            ],
        ),
        ("$.store['bicycle','nothing'].color", ["red"]),  # not last: each name in turn
    ],
)
def test_jayway_path_tests(path: str, expected: Any) -> None:
    assert read(path, BOOKS) == expected


# -- functions (Jayway's *PathFunctionTest) ------------------------------------------------

NUMBERS = {"empty": [], "numbers": list(range(1, 11))}
TEXT = {"text": list("abcdef")}
BATCHES = {
    "batches": {
        "minBatchSize": 10,
        "results": [
            {"productId": 23, "values": [2, 45, 34, 23, 3, 5, 4, 3, 2, 1]},
            {"productId": 23, "values": [52, 3, 12, 11, 18, 22, 1]},
        ],
    }
}


@pytest.mark.parametrize(
    ("path", "document", "expected"),
    [
        ("$.numbers.avg()", NUMBERS, 5.5),
        ("$.numbers.sum()", NUMBERS, 55.0),
        ("$.numbers.max()", NUMBERS, 10.0),
        ("$.numbers.min()", NUMBERS, 1.0),
        ("$.numbers.stddev()", NUMBERS, 2.8722813232690143),
        ("$.empty.avg()", NUMBERS, None),  # Jayway throws; Conductor reads null
        ("$.empty.sum()", NUMBERS, None),
        ("$.empty.max()", NUMBERS, None),
        ("$.numbers.first()", NUMBERS, 1),
        ("$.numbers.last()", NUMBERS, 10),
        ("$.empty.first()", NUMBERS, None),
        ("$.text.first()", TEXT, "a"),
        ("$.text.last()", TEXT, "f"),
        ("$['text'].length()", TEXT, 6),
        ("$['text'].size()", TEXT, 6),
        ("$.numbers.length()", NUMBERS, 10),
        ("$.batches.length()", BATCHES, 2),  # an object's number of properties
        ("$.batches.keys()", BATCHES, ["minBatchSize", "results"]),
        ("$.missing.length()", BATCHES, None),
        (
            "$.batches.results[?(@.values.length() >= $.batches.minBatchSize)].values.avg()",
            BATCHES,
            [12.2],
        ),
        ("$.batches.results[?(@.values.length() >= 3)].values.avg()", BATCHES, [12.2, 17.0]),
        ("$..values.length()", BATCHES, 17),  # Jayway counts the children of every match
        ("$..productId.sum()", BATCHES, 46.0),
    ],
)
def test_jayway_functions(path: str, document: Any, expected: Any) -> None:
    assert read(path, document) == expected


# -- filter operators (Jayway's FilterTest) ------------------------------------------------

FILTERED: dict[str, Any] = {
    "int-key": 1,
    "double-key": 10.1,
    "boolean-key": True,
    "null-key": None,
    "string-key": "string",
    "string-key-empty": "",
    "arr-empty": [],
    "int-arr": [0, 1, 2, 3, 4],
    "string-arr": ["a", "b", "c", "d", "e"],
    "obj": {"foo": "bar"},
}


def accepts(predicate: str) -> bool:
    """Whether ``[?(predicate)]`` accepts the document (a filter on an object tests it)."""
    result: list[Any] = read(f"$[?({predicate})]", FILTERED)
    assert result in ([], [FILTERED])
    return result == [FILTERED]


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ("@['int-key'] == 1", True),
        ("@['int-key'] == 666", False),
        ("@['int-key'] == '1'", True),  # Jayway: a number equals a string that reads as it
        ("1 == '1'", True),
        ("@['boolean-key'] == 1", False),  # but true is never 1
        ("@['double-key'] == 10.1", True),
        ("@['double-key'] == 10.10", True),
        ("@['double-key'] == 10.11", False),
        ("@['string-key'] == 'string'", True),
        ("@['boolean-key'] == true", True),
        ("@['boolean-key'] == false", False),
        ("@['null-key'] == null", True),
        ("@['null-key'] == '666'", False),
        ("@['string-key'] == null", False),
        ("@['missing-key'] == null", True),  # with SUPPRESS_EXCEPTIONS a missing value is null
        ("@['int-arr'] == [0,1,2,3,4]", True),
        ("@['int-arr'] == [0,1,2,3]", False),
        ("@['int-key'] != 1", False),
        ("@['int-key'] != 666", True),
        ("@['int-key'] < 10", True),
        ("@['int-key'] < 0", False),
        ("@['string-key'] < 'z'", True),
        ("@['string-key'] < 1", False),  # neither two numbers nor two strings
        ("@['int-key'] <= 1", True),
        ("@['int-key'] > 0", True),
        ("@['int-key'] >= 2", False),
        ("@['string-key'] =~ /str.*/", True),
        ("@['string-key'] =~ /STR.*/i", True),
        ("@['string-key'] =~ /str/", False),  # a whole match
        ("@['string-arr'] =~ /c/", True),  # any string of a list
        ("@['int-key'] =~ /\\d/", True),  # a number as its text
        ("@['string-key'] =~ /s t r i n g/x", True),
        ("@['int-key'] in [1, 2]", True),
        ("@['int-key'] in [3]", False),
        ("@['int-key'] nin [3]", True),
        ("@['string-key'] in ['a', 'string']", True),
        ("@['string-arr'] subsetof ['a','b','c','d','e','f','g']", True),
        ("@['string-arr'] subsetof ['e','d','b','c','a']", True),
        ("@['string-arr'] subsetof ['a','b','c','d']", False),
        ("@['string-arr'] anyof ['a','z']", True),
        ("@['string-arr'] anyof ['x','y','z']", False),
        ("@['string-arr'] noneof ['z','b','a']", False),
        ("@['string-arr'] noneof ['x','y','z']", True),
        ("@['string-key'] size 6", True),
        ("@['string-key'] size 7", False),
        ("@['int-arr'] size 5", True),
        ("@['string-key-empty'] empty true", True),
        ("@['string-key'] empty true", False),
        ("@['arr-empty'] empty true", True),
        ("@['int-arr'] empty false", True),
        ("@['int-key'] empty false", False),  # neither a string nor a list
        ("@['int-arr'].length() == 5", True),
        ("@.obj.keys() == ['foo']", True),
        ("@.obj.foo", True),  # exists
        ("@.obj.nothing", False),
        ("@['null-key']", True),  # exists, although null
        ("!@['missing-key']", True),
        ("@['int-key'] == 1 && (@['string-key'] == 'x' || @['double-key'] > 10)", True),
    ],
)
def test_jayway_filter_operators(predicate: str, expected: bool) -> None:
    assert accepts(predicate) is expected


def test_a_missing_property_is_null_in_comparisons() -> None:
    items = [{"v": None}, {}, {"v": 1}]
    assert read("$[?(@.v == null)]", items) == [{"v": None}, {}]
    assert read("$[?(@.v != 1)]", items) == [{"v": None}, {}]


def test_equality_follows_jayway_across_types() -> None:
    doc = [{"v": 1}, {"v": "1"}, {"v": True}, {"v": 1.0}, {"v": "one"}]
    assert read("$[?(@.v == 1)]", doc) == [{"v": 1}, {"v": "1"}, {"v": 1.0}]


# -- names, documents and errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "document", "expected"),
    [
        ("$.data.2024", {"data": {"2024": 1}}, 1),  # Jayway's dot names: any character
        ("$.h.x-request-id", {"h": {"x-request-id": 7}}, 7),
        ("$.foo:bar", {"foo:bar": "x"}, "x"),
        ("$.a[0]", {"a": {"0": "key"}}, None),  # an index never reads an object's key
        ("$.a.0", {"a": ["item"]}, None),  # and a name never an array's item
    ],
)
def test_names(path: str, document: Any, expected: Any) -> None:
    assert read(path, document) == expected


def test_a_document_that_is_not_json_is_the_root_value() -> None:
    assert read("$", "plain text") == "plain text"
    assert read("a.b", "plain text") is None
    assert read("$..a", "[1, 2]") == []  # a string document is never parsed as JSON
    assert read("$[*]", 5) == []


def test_a_document_too_deep_to_scan_reads_null() -> None:
    deep: Any = 1
    for _ in range(1000):
        deep = {"a": deep}
    assert read("$..a", deep) is None
    assert read("$" + ".a" * 1000, deep) == 1  # definite paths are walked, not recursed


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "empty path"),
        ("a[", "at the end of 'a['"),
        ("a..", "at the end of 'a..'"),
        ("a[1:2:3]", "a slice takes no step"),
        ("a.b()", "unknown function b()"),
        ("a.concat('x')", "concat(...) is not supported"),
        ("a[?(@.b ==)]", "at character 11 of 'a[?(@.b ==)]'"),
        ("a[?(@.b =~ x)]", "at character 12"),
        ("a[?(@.x.nofn() > 1)]", "unknown function nofn()"),
        ("a[?(@.x all [1])]", "unknown operator 'all' at character 9"),
        ("a[?(length(@.x) > 1)]", "'length' is not defined"),  # RFC 9535 functions: not Jayway
        ("$.a | $.b", "unexpected token '|'"),  # python-jsonpath's unions: not Jayway
        ("a b", "unexpected token 'b'"),
    ],
)
def test_invalid_paths_say_what_and_where_in_one_line(bad: str, says: str) -> None:
    with pytest.raises(JsonPathError) as caught:
        compile_path(bad)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


# -- the fast path -------------------------------------------------------------------------

NAMES = st.text(string.ascii_letters + "_", min_size=1, max_size=3)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
    max_leaves=12,
)
STEPS = st.lists(st.one_of(NAMES, st.integers(min_value=-4, max_value=4)), max_size=4)


def _written(steps: list[str | int]) -> str:
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)


def _has(node: Any, step: str | int) -> bool:
    if isinstance(step, str):
        return isinstance(node, dict) and step in node
    return isinstance(node, list) and -len(node) <= step < len(node)


def _walk(document: Any, steps: list[str | int]) -> Any:
    node = document
    for step in steps:
        if not _has(node, step):
            return None
        node = node[step]
    return node


@settings(database=None, deadline=None)  # nothing left in the tree; shared machines are slow
@given(document=JSON, steps=STEPS)
def test_definite_paths_read_as_a_walk_over_their_keys(document: Any, steps: list[Any]) -> None:
    path = _written(steps)
    expected = _walk(document, steps)
    assert compile_path(path).definite
    assert compile_path(path).read(document) == expected
    # The same steps behind a wildcard make an indefinite path, which python-jsonpath
    # evaluates: it finds the same value (or nothing, where the walk found null).
    matches = compile_path("$[*]" + path[1:]).read([document])
    assert matches == [expected] or (expected is None and matches == [])
