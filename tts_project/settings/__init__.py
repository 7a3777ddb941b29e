"""Settings split: `base` (local defaults), `test` (real Postgres + Redis), `production`."""
