"""Authorization as kube-apiserver 1.32 does it with `--authorization-mode=RBAC`.

`rules` holds upstream's rule matching and coverage checks, `rbac` the authorizer over watch-fed caches
of Roles/ClusterRoles and their bindings, `escalation` the admission check that stops users granting
what they do not hold, `impersonation` the Impersonate-* headers, and `policy` the bootstrap roles.
"""
