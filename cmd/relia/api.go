package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/apimgmt"
	"github.com/relia-dev/relia/callstore"
)

func init() {
	register(newAPICmd)
	registerValidator(apimgmt.Kind, func(name string, data []byte) error { _, err := apimgmt.Parse(name, data); return err })
	schemas[apimgmt.Kind] = apimgmt.JSONSchema
}

// apiFlags reach a gateway's admin API as someone, for the audit log.
type apiFlags struct {
	admin, as string
}

func (f *apiFlags) add(cmd *cobra.Command) {
	who := os.Getenv("USER")
	if who == "" {
		who = "cli"
	}
	cmd.PersistentFlags().StringVar(&f.admin, "admin", "http://127.0.0.1:9901", "the gateway's admin API")
	cmd.PersistentFlags().StringVar(&f.as, "as", who, "who makes the change, for the audit log")
}

func (f *apiFlags) client() *apimgmt.Client { return apimgmt.NewClient(f.admin, f.as, nil) }

// apiErr sorts an admin API failure: a refusal for an unknown API or
// subscription is the user's input; anything else a runtime error.
func apiErr(err error) error {
	var se *callstore.StatusError
	if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		return badInput(err)
	}
	return runtimeErr(err)
}

func newAPICmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "api",
		Short: "API management: catalogs, the developer portal and subscriptions with approval",
		Long: `api drives the gateway's API management through its admin API: a tenant's
catalog (the APIs it may see) and developer portal, subscription requests,
approvals and revocations (each written to the audit log, which relia
calls --audit shows), and the kind: API documents themselves.`,
	}
	f.add(cmd)
	var format string
	catalog := &cobra.Command{
		Use:   "catalog --tenant T",
		Short: "The APIs a tenant may see and subscribe to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			tenant, _ := cmd.Flags().GetString("tenant")
			cat, err := f.client().Catalog(cmd.Context(), tenant)
			if err != nil {
				return apiErr(err)
			}
			if format == "json" {
				return writeIndentedJSON(cmd.OutOrStdout(), cat)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "API\tVERSION\tSTATE\tOWNER\tSUBSCRIPTION\tDESCRIPTION")
			for _, e := range cat.APIs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Version, e.State, dash(e.Owner), e.Subscription, e.Description)
			}
			return tw.Flush()
		},
	}
	catalog.Flags().String("tenant", "", "the tenant whose catalog to show")
	catalog.MarkFlagRequired("tenant")
	catalog.Flags().StringVarP(&format, "output", "o", "table", "stdout format: table or json")

	var out string
	portal := &cobra.Command{
		Use:   "portal --tenant T --out FILE",
		Short: "Save a tenant's developer portal page (self-contained HTML)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tenant, _ := cmd.Flags().GetString("tenant")
			page, err := f.client().Portal(cmd.Context(), tenant)
			if err != nil {
				return apiErr(err)
			}
			if err := os.WriteFile(out, page, 0o644); err != nil {
				return runtimeErr(err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "portal: %s\n", out)
			return nil
		},
	}
	portal.Flags().String("tenant", "", "the tenant whose portal to save")
	portal.MarkFlagRequired("tenant")
	portal.Flags().StringVar(&out, "out", "portal.html", "the file to write")

	change := func(verb, short string) *cobra.Command {
		var req apimgmt.SubscriptionRequest
		c := &cobra.Command{
			Use:   verb + " --tenant T --api A",
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				sub, err := f.client().Change(cmd.Context(), verb, req)
				if err != nil {
					return apiErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", sub.Tenant, sub.API, sub.State)
				return nil
			},
		}
		c.Flags().StringVar(&req.Tenant, "tenant", "", "the tenant")
		c.Flags().StringVar(&req.API, "api", "", "the API")
		c.Flags().StringVar(&req.Note, "note", "", "a note for the audit log")
		c.MarkFlagRequired("tenant")
		c.MarkFlagRequired("api")
		return c
	}
	var subsFormat string
	subs := &cobra.Command{
		Use:   "subscriptions",
		Short: "Every subscription and its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(subsFormat); err != nil {
				return err
			}
			list, err := f.client().Subscriptions(cmd.Context())
			if err != nil {
				return apiErr(err)
			}
			if subsFormat == "json" {
				return writeIndentedJSON(cmd.OutOrStdout(), map[string]any{"subscriptions": list})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TENANT\tAPI\tSTATE\tREQUESTED\tDECIDED BY\tNOTE")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Tenant, s.API, s.State, s.RequestedAt.Format(time.RFC3339), dash(s.DecidedBy), s.Note)
			}
			return tw.Flush()
		},
	}
	subs.Flags().StringVarP(&subsFormat, "output", "o", "table", "stdout format: table or json")
	cmd.AddCommand(catalog, portal,
		change("subscribe", "Request a tenant's access to an API (pending until approved, unless the API auto-approves)"),
		change("approve", "Approve a tenant's subscription: its calls go through"),
		change("revoke", "Revoke a tenant's subscription: its calls get 403 subscription_revoked"),
		subs, newAPIValidateCmd(), kindSchemaCmd(apimgmt.Kind, "API documents"))
	return cmd
}

func newAPIValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check kind: API documents and their OpenAPI documents, and exit (2 when invalid)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var errs []error
			for _, f := range files {
				apis, err := apimgmt.ReadFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d APIs\n", f, len(apis))
			}
			if len(errs) > 0 {
				return badInput(errors.Join(errs...))
			}
			return nil
		},
	}
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
