"""Response-side wire translation: provider responses, streams and errors in the client's format.

``translator`` chains one module per API format (``openai_chat``,
``openai_embeddings``, ``anthropic_messages``, ``gemini``) through the
``canonical`` hub; ``sse`` parses and writes event streams; ``errors`` is the one
place where errors become wire bodies. Everything here is pure: no I/O, and
inputs are never mutated.
"""
