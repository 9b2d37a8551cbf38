"""The Flask extension: set-up, require_auth, blueprints, templates, user loaders, modes, error responses."""
