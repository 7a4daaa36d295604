/**
 * The Kubernetes object shapes the control-plane tests read and write (only the fields they
 * use): metadata, lists, Status, EndpointSlices, Services, Pods, watch events, RBAC rules and
 * subjects.
 *
 * @module
 */

/** Metadata common to every Kubernetes object. */
export interface ObjectMeta {
  /** Object name. */
  name?: string;
  /** Namespace, for namespaced objects. */
  namespace?: string;
  /** Prefix for a server-generated name. */
  generateName?: string;
  /** Labels. */
  labels?: Record<string, string>;
  /** Annotations. */
  annotations?: Record<string, string>;
  /** Opaque version of this object. */
  resourceVersion?: string;
  /** Unique id. */
  uid?: string;
  /** Generation of the spec. */
  generation?: number;
  /** Set when deletion has been requested (the object is terminating). */
  deletionTimestamp?: string;
  /** Creation time. */
  creationTimestamp?: string;
  /** Owners of this object. */
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
}

/** Any Kubernetes object; specific shapes below narrow it. */
export interface KubeObject {
  /** API group and version, e.g. "v1". */
  apiVersion?: string;
  /** Kind, e.g. "Pod". */
  kind?: string;
  /** Object metadata. */
  metadata?: ObjectMeta;
  /** Other fields. */
  [key: string]: unknown;
}

/** A list response, e.g. GET /api/v1/namespaces/ns/pods. */
export interface KubeList<T = KubeObject> {
  /** Kind, e.g. "PodList". */
  kind?: string;
  /** List metadata: the resourceVersion of the list and the continue token of a page. */
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  /** The objects. */
  items: T[];
}

/** A Kubernetes Status, as sent with errors and in ERROR watch events. */
export interface KubeStatus {
  /** Always "Status". */
  kind?: string;
  /** "Success" or "Failure". */
  status?: string;
  /** HTTP status code, e.g. 410. */
  code?: number;
  /** Human-readable message. */
  message?: string;
  /** Machine-readable reason, e.g. "Expired". */
  reason?: string;
}

/** One endpoint of an EndpointSlice. */
export interface Endpoint {
  /** Addresses (one, for Pods). */
  addresses: string[];
  /** Ready, serving and terminating conditions. */
  conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  /** Hostname (from the Pod's spec.hostname with a subdomain). */
  hostname?: string;
  /** Node the endpoint is on. */
  nodeName?: string;
  /** Zone of that Node. */
  zone?: string;
  /** The Pod behind the endpoint. */
  targetRef?: { kind?: string; name?: string; namespace?: string; uid?: string };
  /** Topology hints. */
  hints?: { forZones?: { name: string }[]; forNodes?: { name: string }[] };
}

/** One port of an EndpointSlice. */
export interface EndpointPort {
  /** Port name; "" for an unnamed port. */
  name?: string;
  /** Port number. */
  port?: number;
  /** "TCP", "UDP" or "SCTP". */
  protocol?: string;
  /** Application protocol. */
  appProtocol?: string;
}

/** A discovery.k8s.io/v1 EndpointSlice. */
export interface EndpointSlice extends KubeObject {
  /** Metadata: the label kubernetes.io/service-name ties the slice to its Service. */
  metadata: ObjectMeta;
  /** "IPv4", "IPv6" or "FQDN". */
  addressType: string;
  /** Endpoints; null or absent when there are none. */
  endpoints?: Endpoint[] | null;
  /** Ports; null or absent when none. */
  ports?: EndpointPort[] | null;
}

/** A v1 Service port. */
export interface ServicePort {
  /** Port name (required when there are several ports). */
  name?: string;
  /** Service port. */
  port: number;
  /** Target port on the Pods: a number or a container port name. */
  targetPort?: number | string;
  /** "TCP" (default), "UDP" or "SCTP". */
  protocol?: string;
}

/** A v1 Service. */
export interface Service extends KubeObject {
  /** Metadata. */
  metadata: ObjectMeta;
  /** The fields tests use. */
  spec: {
    selector?: Record<string, string> | null;
    ports?: ServicePort[];
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: string[];
    ipFamilyPolicy?: string;
    type?: string;
    publishNotReadyAddresses?: boolean;
    [key: string]: unknown;
  };
}

/** A v1 Pod. */
export interface Pod extends KubeObject {
  /** Metadata. */
  metadata: ObjectMeta;
  /** The spec. */
  spec: { nodeName?: string; hostname?: string; subdomain?: string; [key: string]: unknown };
  /** The status written by {@linkcode createPod}. */
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    conditions?: { type: string; status: string }[];
    [key: string]: unknown;
  };
}

/** A watch event, one line of a watch stream. */
export interface WatchEvent<T = KubeObject> {
  /** "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or "ERROR". */
  type: string;
  /** The object; a {@linkcode KubeStatus} for ERROR. */
  object: T;
}

/** An RBAC rule, as in a Role. */
export interface PolicyRule {
  /** API groups; "" is the core group. */
  apiGroups?: string[];
  /** Resources, e.g. "endpointslices" or "pods/status". */
  resources?: string[];
  /** Verbs, e.g. "get", "list", "watch". */
  verbs: string[];
  /** Restrict to these object names. */
  resourceNames?: string[];
  /** Non-resource URLs (ClusterRoles only). */
  nonResourceURLs?: string[];
}

/** An RBAC subject. */
export interface Subject {
  /** "ServiceAccount", "User" or "Group". */
  kind: "ServiceAccount" | "User" | "Group";
  /** Name of the account, user or group. */
  name: string;
  /** Namespace, for a ServiceAccount (default: the Role's namespace). */
  namespace?: string;
}
