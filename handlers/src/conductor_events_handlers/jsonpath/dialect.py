"""Jayway's dialect on python-jsonpath's engine, through its documented customisation points.

A :class:`jsonpath.JSONPathEnvironment` subclass with its own lexer (Jayway's dot names, the
word operators, the ``x`` regex flag), parser (the operators, functions at the end of a filter
path, filters that test an object itself) and comparison (:mod:`.comparison`); the library's
own extensions that Jayway lacks are turned off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from re import Pattern
from typing import Any

import jsonpath
from jsonpath.filter import BaseExpression, BooleanLiteral, FilterQuery, FunctionExtension
from jsonpath.function_extensions import ExpressionType, FilterFunction
from jsonpath.match import JSONPathMatch
from jsonpath.segments import JSONPathRecursiveDescentSegment, JSONPathSegment
from jsonpath.selectors import Filter, FilterContext, KeysFilter, NameSelector
from jsonpath.stream import TokenStream
from jsonpath.token import TOKEN_LPAREN, TOKEN_RPAREN

from conductor_events_handlers.jsonpath.comparison import compare
from conductor_events_handlers.jsonpath.functions import FUNCTIONS, call


class _JaywayFunction(FilterFunction):
    """A Jayway function inside a filter: ``@.values.length()`` becomes
    ``jayway_length(@.values, true)``, the flag saying whether ``@.values`` is definite."""

    arg_types = [ExpressionType.NODES, ExpressionType.VALUE]
    return_type = ExpressionType.VALUE

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function

    def __call__(self, nodes: object, definite: bool) -> Any:
        # ``@.length()`` on a string item is handed the string itself, not a node list.
        values = nodes.values() if isinstance(nodes, jsonpath.NodeList) else [nodes]
        if definite:
            return call(self.function, values[0]) if values else None
        return [call(self.function, value) for value in values]


_WORD_OPERATORS = ("nin", "subsetof", "anyof", "noneof", "size", "empty")
_WORD_TOKENS = {f"TOKEN_JAYWAY_{word.upper()}": word for word in _WORD_OPERATORS}


class _JaywayLexer(jsonpath.Lexer):
    """python-jsonpath's lexer with Jayway's names, word operators and regex flags."""

    key_pattern = r"[^\s.\[\]()'\",=!<>&|~*?/\\]+"

    def compile_rules(self) -> Pattern[str]:
        self.re_pattern = r"/(?P<G_RE>(?:(?!(?<!\\)/).)*)/(?P<G_RE_FLAGS>[imsx]*)"
        words = "|".join(f"(?P<{token}>{word}\\b)" for token, word in _WORD_TOKENS.items())
        return re.compile(f"{words}|{super().compile_rules().pattern}", re.DOTALL)


class _JaywayParser(jsonpath.Parser):
    """python-jsonpath's parser with Jayway's operators, trailing functions in filters and
    filters that test an object itself."""

    PRECEDENCES = {
        **jsonpath.Parser.PRECEDENCES,
        **dict.fromkeys(_WORD_TOKENS, jsonpath.Parser.PRECEDENCE_RELATIONAL),
    }
    BINARY_OPERATORS = {**jsonpath.Parser.BINARY_OPERATORS, **_WORD_TOKENS}
    INFIX_LITERAL_OPERATORS = jsonpath.Parser.INFIX_LITERAL_OPERATORS | frozenset(_WORD_OPERATORS)
    RE_FLAG_MAP = {**jsonpath.Parser.RE_FLAG_MAP, "x": re.X}

    def parse_infix_expression(self, stream: TokenStream, left: BaseExpression) -> BaseExpression:
        """Name a word that is not an operator (``@.a all [1]``) rather than the filter's ``(``."""
        token = stream.current()
        if token.kind not in self.BINARY_OPERATORS:
            raise jsonpath.JSONPathSyntaxError(f"unknown operator {token.value!r}", token=token)
        return super().parse_infix_expression(stream, left)

    def parse_relative_query(self, stream: TokenStream) -> BaseExpression:
        return self._trailing_function(super().parse_relative_query(stream), stream)

    def parse_absolute_query(self, stream: TokenStream) -> BaseExpression:
        return self._trailing_function(super().parse_absolute_query(stream), stream)

    def _trailing_function(self, query: BaseExpression, stream: TokenStream) -> BaseExpression:
        """``@.values.length()`` was read as the path ``@.values.length`` followed by ``(``."""
        if stream.current().kind != TOKEN_LPAREN:
            return query
        token = stream.current()
        assert isinstance(query, FilterQuery)
        segments = tuple(query.path.segments)
        last = segments[-1].selectors if segments else ()
        name = last[0].name if len(last) == 1 and isinstance(last[0], NameSelector) else ""
        if name not in FUNCTIONS:
            raise jsonpath.JSONPathSyntaxError(
                f"unknown function {name or '(unnamed)'}()", token=token
            )
        stream.eat(TOKEN_LPAREN)
        stream.eat(TOKEN_RPAREN, f"{name}() takes no arguments")
        inner = jsonpath.JSONPath(env=self.env, segments=segments[:-1])
        argument = type(query)(inner)
        definite = BooleanLiteral(value=inner.singular_query())
        return FunctionExtension(f"jayway_{name}", [argument, definite])

    def parse_filter_selector(
        self, stream: TokenStream, *, keys: bool = False
    ) -> Filter | KeysFilter:
        selector = super().parse_filter_selector(stream, keys=keys)
        if isinstance(selector, Filter):
            return _ChildFilter(env=self.env, token=selector.token, expression=selector.expression)
        return selector

    def parse_query(self, stream: TokenStream) -> Iterable[JSONPathSegment]:
        for segment in super().parse_query(stream):
            if isinstance(segment, JSONPathRecursiveDescentSegment):
                selectors = tuple(
                    _ScanFilter(env=self.env, token=s.token, expression=s.expression)
                    if isinstance(s, _ChildFilter)
                    else s
                    for s in segment.selectors
                )
                segment = JSONPathRecursiveDescentSegment(
                    env=self.env, token=segment.token, selectors=selectors
                )
            yield segment


def _test_object(selector: Filter, node: JSONPathMatch) -> Iterator[JSONPathMatch]:
    context = FilterContext(
        env=selector.env, current=node.obj, root=node.root, extra_context=node.filter_context()
    )
    if selector.expression.evaluate(context):
        yield node


class _ChildFilter(Filter):
    """``[?(...)]``: Jayway tests an object itself, and the items of an array."""

    __slots__ = ()

    def resolve(self, node: JSONPathMatch) -> Iterable[JSONPathMatch]:
        if isinstance(node.obj, Mapping):
            return _test_object(self, node)
        return super().resolve(node)


class _ScanFilter(Filter):
    """``..[?(...)]``: Jayway tests every object in the document (each once)."""

    __slots__ = ()

    def resolve(self, node: JSONPathMatch) -> Iterable[JSONPathMatch]:
        if isinstance(node.obj, Mapping):
            return _test_object(self, node)
        return ()


class JaywayEnvironment(jsonpath.JSONPathEnvironment):
    """Jayway's dialect on python-jsonpath's engine."""

    lexer_class = _JaywayLexer
    parser_class = _JaywayParser
    # python-jsonpath's extensions that Jayway does not have: off (an empty token is unused).
    pseudo_root_token = ""
    filter_context_token = ""
    intersection_token = ""
    union_token = ""
    key_token = ""
    keys_filter_token = ""

    def __init__(self) -> None:
        super().__init__(well_typed=False)

    def setup_function_extensions(self) -> None:
        """Jayway's functions only: RFC 9535's ``length(@.x)`` and friends are not Jayway."""
        for name, function in FUNCTIONS.items():
            self.function_extensions[f"jayway_{name}"] = _JaywayFunction(function)

    def compare(self, left: object, operator: str, right: object) -> bool:
        if operator in ("&&", "||"):
            return super().compare(left, operator, right)
        return compare(operator, _operand(left), _operand(right))


def _operand(value: object) -> Any:
    """A filter operand as Jayway sees it: a missing value is ``null``, several matches a list."""
    if isinstance(value, jsonpath.NodeList):
        return value.values() if value else None
    if value is jsonpath.UNDEFINED:
        return None
    return value


ENVIRONMENT = JaywayEnvironment()
"""The one environment every path is compiled in."""
