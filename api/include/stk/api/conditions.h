/* Condition types and reasons of the Stoker kinds (CONTRACTS.md, "Conditions and reasons"). */
#ifndef STK_API_CONDITIONS_H
#define STK_API_CONDITIONS_H

/* Types shared by every kind (kstatus). */
#define STK_COND_READY	     "Ready"
#define STK_COND_RECONCILING "Reconciling"
#define STK_COND_STALLED     "Stalled"

/* GitSource */
#define STK_COND_FETCH_FAILED	     "FetchFailed"
#define STK_COND_ARTIFACT_IN_STORAGE "ArtifactInStorage"
#define STK_COND_HOST_KEY_VERIFIED   "HostKeyVerified"

/* SyncProfile */
#define STK_COND_ACCEPTED	  "Accepted"
#define STK_COND_DEPENDENCIES_MET "DependenciesMet"

/* Stoker */
#define STK_COND_SOURCE_READY	     "SourceReady"
#define STK_COND_REF_RESOLVED	     "RefResolved"
#define STK_COND_PROFILES_READY	     "ProfilesReady"
#define STK_COND_ALL_GATEWAYS_SYNCED "AllGatewaysSynced"
#define STK_COND_SIDECAR_INJECTED    "SidecarInjected"
#define STK_COND_REF_SKEW	     "RefSkew"

/* Reasons. */
#define STK_REASON_SUCCEEDED		  "Succeeded"
#define STK_REASON_PROGRESSING		  "Progressing"
#define STK_REASON_PROGRESSING_WITH_RETRY "ProgressingWithRetry"
#define STK_REASON_INVALID_SPEC		  "InvalidSpec"
#define STK_REASON_SECRET_NOT_FOUND	  "SecretNotFound"
#define STK_REASON_SUSPENDED		  "Suspended"
#define STK_REASON_PAUSED		  "Paused"

#define STK_REASON_FETCH_FAILED		 "FetchFailed"
#define STK_REASON_AUTHENTICATION_FAILED "AuthenticationFailed"
#define STK_REASON_REF_NOT_FOUND	 "RefNotFound"
#define STK_REASON_HOST_KEY_MISMATCH	 "HostKeyMismatch"
#define STK_REASON_ARTIFACT_FAILED	 "ArtifactFailed"
#define STK_REASON_VERIFIED		 "Verified"
#define STK_REASON_NOT_VERIFIED		 "NotVerified"

#define STK_REASON_VALIDATION_PASSED	 "ValidationPassed"
#define STK_REASON_VALIDATION_FAILED	 "ValidationFailed"
#define STK_REASON_DEPENDENCY_NOT_FOUND	 "DependencyNotFound"
#define STK_REASON_CYCLE_DETECTED	 "CycleDetected"
#define STK_REASON_TRANSITIVE_DEPENDENCY "TransitiveDependency"
#define STK_REASON_DEPENDENCIES_SYNCED	 "DependenciesSynced"
#define STK_REASON_NO_DEPENDENCIES	 "NoDependencies"
#define STK_REASON_DEPENDENCIES_PENDING	 "DependenciesPending"

#define STK_REASON_SOURCE_READY		 "SourceReady"
#define STK_REASON_SOURCE_NOT_FOUND	 "SourceNotFound"
#define STK_REASON_SOURCE_NOT_READY	 "SourceNotReady"
#define STK_REASON_REF_RESOLVED		 "RefResolved"
#define STK_REASON_REF_RESOLUTION_FAILED "RefResolutionFailed"
#define STK_REASON_PROFILES_ACCEPTED	 "ProfilesAccepted"
#define STK_REASON_PROFILE_NOT_FOUND	 "ProfileNotFound"
#define STK_REASON_PROFILE_NOT_ACCEPTED	 "ProfileNotAccepted"
#define STK_REASON_SYNC_SUCCEEDED	 "SyncSucceeded"
#define STK_REASON_NO_GATEWAYS		 "NoGatewaysDiscovered"
#define STK_REASON_SYNC_IN_PROGRESS	 "SyncInProgress"
#define STK_REASON_SYNC_FAILED		 "SyncFailed"
#define STK_REASON_SIDECAR_PRESENT	 "SidecarPresent"
#define STK_REASON_SIDECAR_MISSING	 "SidecarMissing"
#define STK_REASON_REF_OVERRIDE		 "RefOverride"

/* Event reasons (CONTRACTS.md, "Events"). */
#define STK_EVENT_NEW_REVISION		       "NewRevision"
#define STK_EVENT_FETCH_FAILED		       "FetchFailed"
#define STK_EVENT_VALIDATION_FAILED	       "ValidationFailed"
#define STK_EVENT_GATEWAYS_DISCOVERED	       "GatewaysDiscovered"
#define STK_EVENT_MISSING_SIDECAR	       "MissingSidecar"
#define STK_EVENT_PAUSED		       "Paused"
#define STK_EVENT_RESUMED		       "Resumed"
#define STK_EVENT_WEBHOOK_RECEIVED	       "WebhookReceived"
#define STK_EVENT_SYNC_COMPLETED	       "SyncCompleted"
#define STK_EVENT_SYNC_FAILED		       "SyncFailed"
#define STK_EVENT_DESIGNER_SESSIONS_BLOCKED    "DesignerSessionsBlocked"
#define STK_EVENT_DRIFT_DETECTED	       "DriftDetected"
#define STK_EVENT_NOTIFICATION_DISPATCH_FAILED "NotificationDispatchFailed"

#endif
