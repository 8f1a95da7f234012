"""Studio page views, one module per page family."""
