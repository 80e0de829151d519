package app

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// readEnv sets cfg's fields from the JOBGATE_* variables lookup finds, or
// their defaults, as envconfig.Process does from the process's
// environment (which it cannot be given in place of): a variable is read
// by its whole name (the tag; never without its prefix); one that is set,
// even empty, wins over the default; lists are comma-separated. A value that does not
// parse is envconfig's own ParseError.
func readEnv(lookup func(string) (string, bool), cfg *Config) error {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" {
			continue
		}
		key := strings.ToUpper(name)
		value, ok := lookup(key)
		def := f.Tag.Get("default")
		if !ok {
			if def == "" {
				continue
			}
			value = def
		}
		if err := setField(v.Field(i), value); err != nil {
			return &envconfig.ParseError{KeyName: key, FieldName: f.Name, TypeName: f.Type.String(), Value: value, Err: err}
		}
	}
	return nil
}

// setField parses value into field, of the kinds Config's fields are.
func setField(field reflect.Value, value string) error {
	switch field.Kind() {
	case reflect.String:
		field.SetString(value)
	case reflect.Int, reflect.Int64:
		var n int64
		var err error
		if field.Type() == reflect.TypeFor[time.Duration]() {
			var d time.Duration
			d, err = time.ParseDuration(value)
			n = int64(d)
		} else {
			n, err = strconv.ParseInt(value, 0, field.Type().Bits())
		}
		if err != nil {
			return err
		}
		field.SetInt(n)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Float64:
		x, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return err
		}
		field.SetFloat(x)
	case reflect.Slice:
		items := []string{}
		if strings.TrimSpace(value) != "" {
			items = strings.Split(value, ",")
		}
		field.Set(reflect.ValueOf(items))
	default:
		panic("app: Config field of kind " + field.Kind().String() + " has no parser")
	}
	return nil
}
