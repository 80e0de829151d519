package devserver_test

import "go.temporal.io/sdk/temporal"

func temporalTenant(tenant string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(temporal.NewSearchAttributeKeyKeyword("JobTenant").ValueSet(tenant))
}
