package validators

import (
	"errors"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/hcistorage/storage-webhook/admit"
	"github.com/hcistorage/storage-webhook/harvester"
)

// errNoAccess is the answer when the environment has no way to ask (admit.Env.Access nil).
var errNoAccess = errors.New("no authorizer is configured")

// readable is a kind of object IMG-V6 asks about: its resource, and its kind for messages
// (named).
type readable struct {
	resource schema.GroupResource
	kind     string
}

var (
	pvcs   = readable{schema.GroupResource{Resource: "persistentvolumeclaims"}, "PersistentVolumeClaim"}
	images = readable{harvester.ImageGVR.GroupResource(), harvester.KindImage}
)

// mayGet is IMG-V6, the one check every rule that reads an object the request names in
// another place makes first: may the request's user get it? A rule reads that object only
// when mayGet says yes, so a user learns nothing of an object they cannot read, not even
// whether it exists. subject names the object under review in a message ("image ns/name",
// "VM x disk y"); act says what the user wanted to do with the object ("export it"); shown
// is how the message names the object asked about: its kind and namespace/name when the
// request names it, else a description that does not (the image of a storage class). An
// error or timeout refuses the request with a retryable denial: never an allow.
func mayGet(env *admit.Env, res *admit.Result, req *admit.Request, subject func() string, act string, what readable, namespace, name, shown string) bool {
	var (
		ok  bool
		err = errNoAccess
	)
	if env.Access != nil {
		ok, err = env.Access.MayGet(req.Context(), req.User, what.resource, namespace, name)
	}
	switch {
	case errors.Is(err, admit.ErrCannotTell):
		res.Warn(RuleImageAccess, "%s: whether user %q may get %s was not checked: %v", subject(), req.User.Username, shown, err)
		return true
	case err != nil:
		res.DenyRetry(RuleImageAccess, "%s: could not check whether user %q may get %s (%v): try again",
			subject(), req.User.Username, shown, err)
	case !ok:
		res.Deny(RuleImageAccess, "%s: user %q may not get %s, so it cannot %s: name one you can read, or ask an administrator for get access to it",
			subject(), req.User.Username, shown, act)
	}
	return err == nil && ok
}

// named is how a message names an object the request itself names: its kind and
// namespace/name.
func (r readable) named(namespace, name string) string {
	return r.kind + " " + namespace + "/" + name
}
