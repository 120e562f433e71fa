"""apiextensions: CustomResourceDefinitions, served generically through the registry.

A CRD's versions become `Resource` entries at runtime (`resources`), their schemas join the schema
definitions (`schemas`) so OpenAPI, pruning and apply treat them like built-in kinds, and the
`controller` keeps the registry in step with the CRDs in the store.
"""
