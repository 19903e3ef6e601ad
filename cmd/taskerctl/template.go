package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/tasker-systems/tasker-go/domain"
)

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
func (c *cli) templateValidate(args []string) error {
	fs := c.newFlagSet("template validate")
	files, err := c.parseCommand(fs, args, 1, -1, "FILE...")
	if err != nil {
		return err
	}
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
