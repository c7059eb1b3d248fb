"""Adapters that put other agent frameworks' sessions on a mobstore Store.

Each module here needs its framework installed (an extra: `pip install "mobstore[openai-agents]"`)
and is imported by name only; `import engine` never imports this package.

- engine.integrations.openai_agents: MobstoreSession, the openai-agents SDK's Session protocol.
"""
