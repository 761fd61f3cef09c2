package migrate

// kind is the set of Lua types a value may have. The JavaScript printer
// reads it to decide whether JavaScript's notion of truth, its + and its
// indexing agree with Lua's for that value.
type kind uint8

const (
	kNil kind = 1 << iota
	kFalse
	kTrue
	kNumber
	kString
	kTable
	kFunc

	kBool = kFalse | kTrue
	kAny  = kNil | kBool | kNumber | kString | kTable | kFunc
)

// shape says how a table is used: as an array (keys 1..n) or as an object
// (string keys). JavaScript has a different type for each.
type shape uint8

const (
	shapeNone    shape = iota // not a table
	shapeEmpty                // only {} seen: usage decides, an object if none
	shapeArray                // keys 1..n: a JavaScript array
	shapeObject               // string keys: a JavaScript object
	shapeUnknown              // a table from outside the rule (JSON, a parameter)
	shapeMixed                // used both ways: no faithful JavaScript type
)

// typ is what the analysis knows of a value.
type typ struct {
	k    kind
	s    shape
	elem *typ // values the table holds; nil for none seen
}

var (
	anyType    = typ{k: kAny, s: shapeUnknown, elem: &typ{k: kAny, s: shapeUnknown}}
	nilType    = typ{k: kNil}
	boolType   = typ{k: kBool}
	numberType = typ{k: kNumber}
	stringType = typ{k: kString}
	funcType   = typ{k: kFunc}
)

// maxTypeDepth bounds the nesting union follows, so that a table that
// holds itself does not make the analysis loop.
const maxTypeDepth = 4

// arrayOf returns the type of an array of elem.
func arrayOf(elem typ) typ { return typ{k: kTable, s: shapeArray, elem: &elem} }

// objectOf returns the type of an object of elem values.
func objectOf(elem typ) typ { return typ{k: kTable, s: shapeObject, elem: &elem} }

// orNil returns t that may also be nil.
func (t typ) orNil() typ {
	t.k |= kNil
	return t
}

// truthy returns t without nil and false: what is left after Lua found
// the value true.
func (t typ) truthy() typ {
	t.k &^= kNil | kFalse
	return t
}

// falsy returns the part of t Lua finds false.
func (t typ) falsy() typ { return typ{k: t.k & (kNil | kFalse)} }

// may reports whether t may be of a kind in k.
func (t typ) may(k kind) bool { return t.k&k != 0 }

// element returns the type of t[k] for any key k: nil when the table
// holds nothing, anything when it is not known.
func (t typ) element() typ {
	if t.k&kTable == 0 {
		return anyType
	}
	if t.elem == nil {
		if t.s == shapeUnknown {
			return anyType
		}
		return nilType
	}
	return t.elem.orNil()
}

// union returns the type of a value that is of a or of b.
func union(a, b typ) typ { return unionDepth(a, b, 0) }

func unionDepth(a, b typ, depth int) typ {
	out := typ{k: a.k | b.k, s: mergeShape(a.s, b.s)}
	switch {
	case depth >= maxTypeDepth:
		if a.elem != nil || b.elem != nil {
			out.elem = &typ{k: kAny, s: shapeUnknown}
		}
	case a.elem == nil:
		out.elem = b.elem
	case b.elem == nil:
		out.elem = a.elem
	default:
		e := unionDepth(*a.elem, *b.elem, depth+1)
		out.elem = &e
	}
	return out
}

// mergeShape returns the shape of a table used as a and as b.
func mergeShape(a, b shape) shape {
	switch {
	case a == b:
		return a
	case a == shapeNone:
		return b
	case b == shapeNone:
		return a
	case a == shapeMixed || b == shapeMixed:
		return shapeMixed
	case a == shapeEmpty:
		return b
	case b == shapeEmpty:
		return a
	case a == shapeUnknown || b == shapeUnknown:
		return shapeUnknown
	}
	return shapeMixed // an array and an object
}

// equal reports whether a and b are the same type.
func (t typ) equal(o typ) bool {
	if t.k != o.k || t.s != o.s || (t.elem == nil) != (o.elem == nil) {
		return false
	}
	return t.elem == nil || t.elem.equal(*o.elem)
}

// tableShape returns the shape a printer should treat t as: an object
// when nothing says it is an array.
func (t typ) tableShape() shape {
	if t.s == shapeEmpty || t.s == shapeNone {
		return shapeObject
	}
	return t.s
}
