"""User authentication: password hashing and verification with failure throttling. Imports store."""
