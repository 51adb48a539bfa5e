"""The operator dashboard at `/dashboard`: server-rendered pages behind an operator login."""
