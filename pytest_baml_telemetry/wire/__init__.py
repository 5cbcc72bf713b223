"""Provider wire formats: one module per format, the bytes a provider's HTTP API speaks.

A wire module knows one provider's request and response bodies and nothing else: no
sockets, no httpx, no baml_py, no emitter. It imports only the standard library and this
package's standard-library-only leaves (``_validate`` and ``wire.common``), because the
fake LLM server's child process imports it without running the package's ``__init__``
(see ``fake/_server_child.py``). The fake server (both its parent and its child process)
and the httpx path (``modular.py``) import the same module, so the fake speaks exactly
what the real path reads.

``common`` holds what every format shares: the text of scripted content, splitting it
into streamed pieces, usage descriptions, HTTP statuses and server-sent-event framing.

Every provider module offers the same set of names (``openai`` is the model):

* requests: ``PATHS`` (the paths served), ``is_chat_path(path)``, ``path_model(path)`` (a
  model named in the URL), ``request_model(body)``, ``request_messages(body)``,
  ``request_stream(body, path)``, ``request_include_usage(body)``;
* responses, written by the fakes: ``usage_to_wire(usage)`` (a usage description to the
  provider's usage object, ``None`` for none), ``new_id(tag)``, ``finish_reason(name)`` (a
  scripted finish reason in the provider's words), ``completion_body(content, *, id, model,
  created, finish_reason, usage)``, ``stream_events(pieces, *, id, model, created,
  finish_reason, usage, null_usage)`` (``OPENING_EVENTS`` events, then one content event per
  piece, then the closing ones), ``encode_event(event)`` (one event as bytes, framed for
  ``STREAM_CONTENT_TYPE``), ``malformed_events(body)``, ``error_type(status)`` (the provider's
  own error type/code names), ``error_body(message, error_type, code)``, ``request_id(prefix, n)``
  (sent as the ``REQUEST_ID_HEADER`` header);
* responses, read by the httpx path: ``response_text(body)``, ``response_usage(body)``
  (``(input, output, cached_input)`` or ``None``), ``response_id(body)``,
  ``response_model(body)``, ``decode_event(line)`` and ``event_pieces(event)``.

Modules: ``openai`` (chat completions), ``openai_responses`` (Responses), ``anthropic`` (Messages),
``google`` (Gemini), ``bedrock`` (Bedrock Converse). A new provider is one new
module here with that set, plus its entry in the fake server child's dispatch table
(``FORMATS``) and in ``fake/server_clients.py``.
"""
