/**
 * Identity and RBAC on the real API server: Roles granted to and revoked from users, groups
 * and ServiceAccounts (waiting until the authorizer agrees), ServiceAccounts, TokenRequest
 * tokens and who a token is.
 *
 * @module
 */

import { kube, KubeError, kubeOk, type KubeRequestOptions } from "./http.ts";
import type { PolicyRule, Subject } from "./types.ts";
import { uniqueName, waitFor } from "./wait.ts";

/** Options of {@linkcode grantRole}. */
export interface GrantOptions {
  /** Name of the Role and RoleBinding (default: unique from the subject). */
  name?: string;
  /**
   * Make a ClusterRole and ClusterRoleBinding instead (`ns` is then only the ServiceAccount
   * default).
   */
  clusterWide?: boolean;
  /** Wait until the API server authorizes the first rule (default true). */
  wait?: boolean;
}

function rbacPaths(
  ns: string,
  clusterWide: boolean | undefined,
): { role: string; binding: string } {
  const base = "/apis/rbac.authorization.k8s.io/v1";
  return clusterWide
    ? { role: `${base}/clusterroles`, binding: `${base}/clusterrolebindings` }
    : { role: `${base}/namespaces/${ns}/roles`, binding: `${base}/namespaces/${ns}/rolebindings` };
}

/** The user name and groups the API server gives a subject. */
function userOf(ns: string, subject: Subject): { user: string; groups: string[] } {
  switch (subject.kind) {
    case "ServiceAccount": {
      const saNs = subject.namespace ?? ns;
      return {
        user: `system:serviceaccount:${saNs}:${subject.name}`,
        groups: [
          "system:serviceaccounts",
          `system:serviceaccounts:${saNs}`,
          "system:authenticated",
        ],
      };
    }
    case "User":
      return { user: subject.name, groups: ["system:authenticated"] };
    case "Group":
      return { user: "kpd-test-probe", groups: [subject.name, "system:authenticated"] };
  }
}

/**
 * Whether the API server authorizes the subject for the first verb and resource of a rule
 * (SubjectAccessReview).
 */
async function allowed(
  ns: string,
  subject: Subject,
  rule: PolicyRule,
  clusterWide?: boolean,
): Promise<boolean> {
  const { user, groups } = userOf(ns, subject);
  const [group, resourceFull] = [rule.apiGroups?.[0] ?? "", rule.resources?.[0] ?? ""];
  const [resource, subresource] = resourceFull.split("/");
  const spec: Record<string, unknown> = { user, groups };
  if (rule.nonResourceURLs?.length) {
    spec.nonResourceAttributes = { path: rule.nonResourceURLs[0], verb: rule.verbs[0] };
  } else {
    spec.resourceAttributes = {
      namespace: clusterWide ? "" : ns,
      verb: rule.verbs[0] === "*" ? "get" : rule.verbs[0],
      group: group === "*" ? "" : group,
      resource: resource === "*" ? "pods" : resource,
      subresource,
      name: rule.resourceNames?.[0],
    };
  }
  const review = await kubeOk<{ status?: { allowed?: boolean } }>(
    "POST",
    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    { body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec } },
  );
  return review.status?.allowed === true;
}

/**
 * Grants rules to a subject with a Role and RoleBinding (or cluster-wide ones), waits until they
 * take effect, and returns their name.
 */
export async function grantRole(
  ns: string,
  subject: Subject,
  rules: PolicyRule[],
  options: GrantOptions = {},
): Promise<string> {
  const name = options.name ?? uniqueName(`kpd-test-${subject.name}`);
  const paths = rbacPaths(ns, options.clusterWide);
  const roleKind = options.clusterWide ? "ClusterRole" : "Role";
  await kubeOk("POST", paths.role, {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: roleKind,
      metadata: { name },
      rules: rules.map((r) => ({
        ...r,
        apiGroups: r.apiGroups ?? (r.nonResourceURLs ? undefined : [""]),
      })),
    },
  });
  const rbacSubject = subject.kind === "ServiceAccount"
    ? { kind: "ServiceAccount", name: subject.name, namespace: subject.namespace ?? ns }
    : { kind: subject.kind, name: subject.name, apiGroup: "rbac.authorization.k8s.io" };
  await kubeOk("POST", paths.binding, {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: options.clusterWide ? "ClusterRoleBinding" : "RoleBinding",
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name },
      subjects: [rbacSubject],
    },
  });
  if (options.wait !== false && rules.length > 0) {
    await waitFor(() => allowed(ns, subject, rules[0], options.clusterWide), {
      message: `RBAC grant ${name} to take effect`,
    });
  }
  return name;
}

/**
 * Deletes a Role and RoleBinding made by {@linkcode grantRole} and waits until its first rule is no
 * longer authorized for its subjects (unless `wait` is false).
 */
export async function revokeRole(
  ns: string,
  name: string,
  options: { clusterWide?: boolean; wait?: boolean } = {},
): Promise<void> {
  const paths = rbacPaths(ns, options.clusterWide);
  const role = await kubeOk<{ rules?: PolicyRule[] }>("GET", `${paths.role}/${name}`);
  const binding = await kubeOk<{ subjects?: Subject[] }>("GET", `${paths.binding}/${name}`);
  await kubeOk("DELETE", `${paths.binding}/${name}`);
  await kubeOk("DELETE", `${paths.role}/${name}`);
  const rule = role.rules?.[0];
  if (options.wait === false || !rule) return;
  for (const subject of binding.subjects ?? []) {
    await waitFor(async () => !(await allowed(ns, subject, rule, options.clusterWide)), {
      message: `RBAC revocation of ${name} to take effect`,
    });
  }
}

/**
 * Creates a ServiceAccount and, when rules are given, a Role and RoleBinding (named like it)
 * granting them; returns its name.
 */
export async function createServiceAccount(
  ns: string,
  name: string,
  options: { rules?: PolicyRule[] } = {},
): Promise<string> {
  const res = await kube("POST", `/api/v1/namespaces/${ns}/serviceaccounts`, {
    body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } },
  });
  if (res.status >= 300 && res.status !== 409) {
    throw new KubeError(`POST serviceaccount ${ns}/${name}`, res);
  }
  if (options.rules) {
    await grantRole(ns, { kind: "ServiceAccount", name }, options.rules, { name });
  }
  return name;
}

/**
 * Mints a ServiceAccount token through the TokenRequest API (expirationSeconds at least 600) and
 * returns it.
 */
export async function mintToken(
  ns: string,
  sa: string,
  options: { expirationSeconds?: number; audiences?: string[] } = {},
): Promise<string> {
  const spec: Record<string, unknown> = {};
  if (options.expirationSeconds !== undefined) spec.expirationSeconds = options.expirationSeconds;
  if (options.audiences) spec.audiences = options.audiences;
  const review = await kubeOk<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
    { body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec } },
  );
  return review.status.token;
}

/** The user name the API server sees for a token (SelfSubjectReview). */
export async function whoAmI(
  options: Pick<KubeRequestOptions, "token" | "client" | "server"> = {},
): Promise<{ username: string; groups: string[] }> {
  const review = await kubeOk<{ status: { userInfo: { username: string; groups?: string[] } } }>(
    "POST",
    "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    {
      ...options,
      body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
    },
  );
  return { username: review.status.userInfo.username, groups: review.status.userInfo.groups ?? [] };
}
