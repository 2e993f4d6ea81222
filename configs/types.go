package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// exactNumbers is the decode hook that keeps numbers exact. Viper decodes weakly: 10.7 into
// an int field became 10, and 9223372036854775808 (which YAML reads as an unsigned number)
// wrapped to a negative int that validation then called "must be > 0". Here a fraction, a
// boolean or a number outside the field's type is an error that says what was wrong; whole
// numbers in strings (environment variables, flags) are parsed strictly.
func exactNumbers(from, to reflect.Value) (any, error) {
	var lo, hi int64 // the field's range; hi < lo marks an unsigned 64-bit field
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		lo, hi = math.MinInt64, math.MaxInt64
	case reflect.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case reflect.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case reflect.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		lo, hi = 0, int64(math.MaxInt64)
		if b := to.Type().Bits(); b < 64 {
			hi = int64(1)<<b - 1
		}
	default:
		return from.Interface(), nil
	}
	if !from.IsValid() {
		return nil, nil
	}
	outside := func(v any) error {
		return fmt.Errorf("%v is out of range: a whole number from %d to %d", v, lo, hi)
	}
	switch from.Kind() {
	case reflect.Float32, reflect.Float64:
		f := from.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%v is not a whole number", f)
		}
		return nil, fmt.Errorf("%v is written as a decimal number; write a whole number (%s)", f, strconv.FormatFloat(f, 'f', -1, 64))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v := from.Int(); v < lo || v > hi {
			return nil, outside(v)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v := from.Uint(); v > uint64(hi) {
			return nil, outside(v)
		}
	case reflect.Bool:
		return nil, fmt.Errorf("%v is not a number", from.Bool())
	case reflect.String:
		s := strings.TrimSpace(from.String())
		v, err := strconv.ParseInt(s, 10, 64)
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return nil, fmt.Errorf("%s is out of range: a whole number from %d to %d", s, lo, hi)
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", from.String())
		}
		if v < lo || v > hi {
			return nil, outside(v)
		}
		return v, nil
	}
	return from.Interface(), nil
}

// decodeProblems rewords the decoder's errors like Validate's: one problem per line, each
// prefixed by its key ("zones[0].capacity: 10.7 is not a whole number").
func decodeProblems(err error) error {
	var flat []error
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case *mapstructure.DecodeError:
			inner := x.Unwrap()
			if _, nested := inner.(*mapstructure.DecodeError); nested || isJoined(inner) {
				walk(inner)
				return
			}
			flat = append(flat, fmt.Errorf("%s: %w", x.Name(), inner))
		case interface{ Unwrap() []error }:
			for _, y := range x.Unwrap() {
				walk(y)
			}
		default:
			if u := errors.Unwrap(e); u != nil {
				var de *mapstructure.DecodeError
				if errors.As(u, &de) {
					walk(u) // "decoding failed due to the following error(s)" around them
					return
				}
			}
			flat = append(flat, e)
		}
	}
	walk(err)
	return &ValidationError{Problems: flat}
}

func isJoined(e error) bool {
	_, ok := e.(interface{ Unwrap() []error })
	return ok
}
