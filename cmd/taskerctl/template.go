package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/tasker-systems/tasker-go/domain"
)

func init() { registerGroup(templateCommand) }

// templateCommand is `taskerctl template …`.
func templateCommand(c *cli) *cobra.Command {
	cmd := groupCommand("template", "Validate template files offline; list registered templates")
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Check template YAML files with the worker's rules (offline)",
		Long: `Check task template files offline with exactly the rules the worker applies
at start-up: strict decoding (an unknown or misspelled key is an error naming
file:line), versions, step names, dependencies and cycles, input_schema.
Exit 2 if any file is invalid.`,
		Example: "  taskerctl template validate templates/*.yaml",
		Args:    c.minArgs("FILE..."),
		RunE:    func(_ *cobra.Command, files []string) error { return c.templateValidate(files) },
	}, c.templateListCommand())
	return cmd
}

func (c *cli) templateListCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "list [--namespace NS]",
		Short: "List the templates registered with the orchestration",
		Args:  c.noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := c.newClient()
			if err != nil {
				return err
			}
			defer client.CloseIdleConnections()
			list, err := client.ListTemplates(cmd.Context(), namespace)
			if err != nil {
				return fmt.Errorf("list templates: %w", err)
			}
			if c.jsonOutput() {
				return c.printJSON(list)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tNAME\tVERSION\tUPDATED\tDESCRIPTION")
			for _, t := range list {
				desc := "-"
				if t.Description != nil && *t.Description != "" {
					desc = *t.Description
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Namespace, t.Name, t.Version, t.UpdatedAt, desc)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "", "only this namespace")
	return cmd
}

// templateReport is one file of `template validate --output json`.
type templateReport struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Template string          `json:"template,omitempty"`
	Steps    int             `json:"steps,omitempty"`
	Errors   []templateError `json:"errors"`
}

// templateError is one problem; Field is empty for read and parse errors.
type templateError struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// templateValidate checks files offline with the worker's rules (contract
// §6.3: domain.ParseTemplateYAML + Validate). Any invalid file is exit 2:
// the input is wrong.
func (c *cli) templateValidate(files []string) error {
	reports := make([]templateReport, 0, len(files))
	invalid := 0
	for _, f := range files {
		r := validateTemplateFile(f)
		if !r.Valid {
			invalid++
		}
		reports = append(reports, r)
	}
	if c.jsonOutput() {
		if err := c.printJSON(reports); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			if r.Valid {
				fmt.Fprintf(c.stdout, "%s: ok (%s, %d steps)\n", r.File, r.Template, r.Steps)
				continue
			}
			for _, e := range r.Errors {
				if e.Field == "" {
					fmt.Fprintf(c.stdout, "%s: %s\n", r.File, e.Reason)
				} else {
					fmt.Fprintf(c.stdout, "%s: %s: %s\n", r.File, e.Field, e.Reason)
				}
			}
		}
	}
	if invalid > 0 {
		return &exitError{code: exitUsage, err: fmt.Errorf("%d of %d template files are invalid", invalid, len(files))}
	}
	return nil
}

func validateTemplateFile(path string) templateReport {
	r := templateReport{File: path, Errors: []templateError{}}
	data, err := os.ReadFile(path)
	if err != nil {
		r.Errors = append(r.Errors, templateError{Reason: fmt.Sprintf("cannot read: %v", err)})
		return r
	}
	t, err := domain.ParseTemplateYAML(data)
	if err != nil {
		r.Errors = append(r.Errors, templateError{Reason: err.Error()})
		return r
	}
	r.Template = t.NamespaceName + "/" + t.Name + "/" + t.Version
	r.Steps = len(t.Steps)
	err = t.Validate()
	var tv *domain.TemplateValidationError
	switch {
	case err == nil:
		r.Valid = true
	case errors.As(err, &tv):
		for _, p := range tv.Problems {
			r.Errors = append(r.Errors, templateError{Field: p.Field, Reason: p.Reason})
		}
	default:
		r.Errors = append(r.Errors, templateError{Reason: err.Error()})
	}
	return r
}
