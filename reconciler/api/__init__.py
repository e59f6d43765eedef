"""Everything that talks MetaStudio: models, auth, the HTTP client, API errors."""
