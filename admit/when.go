package admit

import "strings"

// The builders below write the CEL of the rules' When conditions (SPEC §5.9): the API
// server evaluates them as the webhooks' matchConditions and calls this service only when
// one holds. Every expression must hold for each request its rule can deny, warn about or
// mutate, and must never fail to evaluate (an evaluation error is refused under
// failurePolicy Fail): fields are read through CEL optionals, and oldObject, which is null
// on CREATE, only where the operation has one or behind CELCreate / CELUpdate.

// CEL names of the request's objects.
const (
	CELObject = "object"
	CELOld    = "oldObject"
)

// CELCreate and CELUpdate tell, in a condition shared by CREATE and UPDATE, whether there is
// an old object.
const (
	CELCreate = CELOld + " == null"
	CELUpdate = CELOld + " != null"
)

// CELString is a CEL string literal.
func CELString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// CELList is a CEL list of string literals.
func CELList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = CELString(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// CELAnnotation is annotation key of obj, the empty string when absent.
func CELAnnotation(obj, key string) string {
	return obj + ".metadata.?annotations[?" + CELString(key) + "].orValue('')"
}

// CELHasAnnotation is whether obj carries annotation key (with any value).
func CELHasAnnotation(obj, key string) string {
	return obj + ".metadata.?annotations[?" + CELString(key) + "].hasValue()"
}

// CELLabel is label key of obj, the empty string when absent.
func CELLabel(obj, key string) string {
	return obj + ".metadata.?labels[?" + CELString(key) + "].orValue('')"
}

// CELField is the member at path (dot-separated names) of obj, or def when any part of it
// is absent.
func CELField(obj, path, def string) string {
	return obj + ".?" + strings.ReplaceAll(path, ".", ".?") + ".orValue(" + def + ")"
}

// CELHasField is whether the member at path of obj is present.
func CELHasField(obj, path string) string {
	return obj + ".?" + strings.ReplaceAll(path, ".", ".?") + ".hasValue()"
}

// OldOr is expr of oldObject, or def when there is no old object (CREATE).
func OldOr(expr, def string) string {
	return "(" + CELCreate + " ? " + def + " : " + expr + ")"
}

// CELFieldChanged is whether the member at path differs between object and oldObject (def
// stands for an absent one); only where there is an old object.
func CELFieldChanged(path, def string) string {
	return CELField(CELObject, path, def) + " != " + CELField(CELOld, path, def)
}

// CELAnnotationChanged is whether annotation key differs between object and oldObject
// (absent reads as empty); only where there is an old object.
func CELAnnotationChanged(key string) string {
	return CELAnnotation(CELObject, key) + " != " + CELAnnotation(CELOld, key)
}

// CELOwnedBy is whether obj has an owner reference of kind in API group group.
func CELOwnedBy(obj, group, kind string) string { return celOwner(obj, group, kind, "") }

// CELOwnedByNamesake is whether obj has an owner reference of kind in group with obj's own
// name (CDI's target PVC is named like, and owned by, its DataVolume).
func CELOwnedByNamesake(obj, group, kind string) string {
	return celOwner(obj, group, kind, " && o.name == "+obj+".metadata.?name.orValue('')")
}

func celOwner(obj, group, kind, also string) string {
	return obj + ".metadata.?ownerReferences.orValue([]).exists(o, o.kind == " + CELString(kind) +
		" && o.apiVersion.startsWith(" + CELString(group+"/") + ")" + also + ")"
}

// CELUserNotIn is whether the request's user is none of users.
func CELUserNotIn(users []string) string {
	return "!(request.userInfo.username in " + CELList(users) + ")"
}

// CELAnd and CELOr join expressions, each in parentheses.
func CELAnd(exprs ...string) string { return join(exprs, " && ") }
func CELOr(exprs ...string) string  { return join(exprs, " || ") }

func join(exprs []string, op string) string {
	if len(exprs) == 1 {
		return exprs[0]
	}
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		parts[i] = "(" + e + ")"
	}
	return strings.Join(parts, op)
}

// CELAnyKey is the disjunction of expr over keys (such as "an update drops one of these
// annotations").
func CELAnyKey(keys []string, expr func(key string) string) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = expr(k)
	}
	return CELOr(out...)
}
