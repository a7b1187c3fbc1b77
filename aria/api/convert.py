"""OpenAI requests -> :class:`GenerationJob`, with the checks pydantic cannot express.

Everything rejected here is a 400 with the offending ``param``: content ARIA's text
models cannot take (images, audio), tool schemas that are not valid JSON Schema or
would cost too much to compile (:mod:`aria.backends.bounds`), tool-call arguments
nested too deep to parse safely, a ``tool_choice`` naming an unknown function,
unsupported options (``logprobs``).
"""

from __future__ import annotations

from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from aria.api.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    CompletionRequest,
    Message,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolMessage,
)
from aria.backends import GenerationJob, GrammarSpec
from aria.backends.bounds import SchemaBudget, check_nesting
from aria.errors import InvalidRequest

__all__ = ["chat_job", "completion_job"]


def _check_schema(schema: dict[str, Any], param: str, budget: SchemaBudget) -> None:
    budget.check(schema, param)  # first: jsonschema recurses, and the grammar expands
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(
            f"{param} is not a valid JSON Schema: {exc.message}"[:500], param=param
        ) from None


def _text(content: Any, param: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if not isinstance(part, TextPart):
            raise InvalidRequest(
                f"{param} contains {part.type} content; this node's models read text only",
                param=param,
            )
        parts.append(part.text)
    return "\n".join(parts)


def _message(message: Message, index: int) -> dict[str, Any]:
    param = f"messages.{index}.content"
    role = "system" if isinstance(message, SystemMessage) else message.role
    item: dict[str, Any] = {"role": role, "content": _text(message.content, param)}
    if isinstance(message, AssistantMessage) and message.tool_calls:
        for number, call in enumerate(message.tool_calls):
            arguments = f"messages.{index}.tool_calls.{number}.function.arguments"
            check_nesting(call.function.arguments, arguments)  # the worker parses it
        item["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if isinstance(message, ToolMessage):
        item["tool_call_id"] = message.tool_call_id
    elif message.name:
        item["name"] = message.name
    return item


def _grammar(
    body: ChatCompletionRequest, tools: tuple[dict[str, Any], ...], budget: SchemaBudget
) -> GrammarSpec | None:
    choice = body.tool_choice
    if tools and choice != "none":
        if body.response_format is not None and body.response_format.type != "text":
            raise InvalidRequest(
                "use either tools or a JSON response_format, not both", param="response_format"
            )
        if isinstance(choice, NamedToolChoice):
            return GrammarSpec(kind="tools", tools=tools, mode="named", name=choice.function.name)
        return GrammarSpec(
            kind="tools", tools=tools, mode="required" if choice == "required" else "auto"
        )
    if choice == "required" or isinstance(choice, NamedToolChoice):
        raise InvalidRequest("tool_choice requires tools", param="tool_choice")
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return GrammarSpec(kind="json_object")
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise InvalidRequest(
            "response_format json_schema needs json_schema.schema", param="response_format"
        )
    _check_schema(fmt.json_schema.schema_, "response_format.json_schema.schema", budget)
    return GrammarSpec(kind="json_schema", schema=fmt.json_schema.schema_)


def _tools(body: ChatCompletionRequest, budget: SchemaBudget) -> tuple[dict[str, Any], ...]:
    tools = tuple(tool.model_dump(exclude_none=True) for tool in body.tools or ())
    names = [tool["function"]["name"] for tool in tools]
    for index, tool in enumerate(tools):
        parameters = tool["function"].get("parameters")
        if parameters is not None:
            _check_schema(parameters, f"tools.{index}.function.parameters", budget)
        if names.count(tool["function"]["name"]) > 1:
            raise InvalidRequest(
                f"tools.{index}: two tools are named {names[index]!r}",
                param=f"tools.{index}.function.name",
            )
    if (
        isinstance(body.tool_choice, NamedToolChoice)
        and body.tool_choice.function.name not in names
    ):
        raise InvalidRequest(
            f"tool_choice names {body.tool_choice.function.name!r}, which is not in tools",
            param="tool_choice",
        )
    return tools


def _sampling(body: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    if body.logit_bias is None:
        bias = {}
    else:
        bias = {int(token): value for token, value in body.logit_bias.items()}
    return {
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "stop": body.stops(),
        "seed": body.seed,
        "presence_penalty": body.presence_penalty or 0.0,
        "frequency_penalty": body.frequency_penalty or 0.0,
        "logit_bias": bias,
    }


def chat_job(body: ChatCompletionRequest) -> tuple[GenerationJob, bool]:
    """The job for a chat request, and whether tool calls should be parsed.

    Raises:
        InvalidRequest: see the module docstring.
    """
    if body.logprobs:
        raise InvalidRequest("logprobs are not supported", param="logprobs")
    budget = SchemaBudget()  # one budget: all of a request's schemas make one grammar
    tools = _tools(body, budget)
    grammar = _grammar(body, tools, budget)
    use_tools = bool(tools) and body.tool_choice != "none"
    if grammar is not None and grammar.kind == "tools" and body.parallel_tool_calls is False:
        grammar = GrammarSpec(
            kind="tools", tools=tools, mode=grammar.mode, name=grammar.name, single=True
        )
    job = GenerationJob(
        messages=tuple(_message(m, i) for i, m in enumerate(body.messages)),
        tools=tools if use_tools else (),
        max_tokens=body.max_completion_tokens or body.max_tokens,
        grammar=grammar,
        **_sampling(body),
    )
    return job, use_tools


def completion_job(body: CompletionRequest) -> GenerationJob:
    """Raises: InvalidRequest: ``logprobs`` was asked for."""
    if body.logprobs is not None:
        raise InvalidRequest("logprobs are not supported", param="logprobs")
    return GenerationJob(prompt=body.prompt_text(), max_tokens=body.max_tokens, **_sampling(body))
