"""One router per API surface: native, OpenAI-compatible, operations, web page."""
