"""The knowledge base of each team: runbooks and past incidents, searched by BM25 and embeddings.

``store.KnowledgeBase`` adds, lists and searches; ``runbooks`` reads uploaded markdown;
``github_source`` imports it from a path of a repository the team claims; ``incidents`` turns a
finished run into a passage; ``similar`` finds the closest past incidents when a run starts;
``embeddings`` loads the packaged sentence model lazily; ``index`` scores; ``views`` and ``openapi``
are the config API's routes and their documentation. Nothing is imported here, so that importing
``models`` (for migrations) stays cheap.
"""
