"""Storage shared by every domain: the declarative base, the async engine and migrations."""
