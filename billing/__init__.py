"""The billing domain: no HTTP and no GraphQL in here (see shared design)."""
