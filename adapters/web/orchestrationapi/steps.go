package orchestrationapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/ports"
)

func (s *Server) listSteps(c *gin.Context) {
	id, ok := s.allowedPathTask(c)
	if !ok {
		return
	}
	steps, err := s.deps.Query.ListSteps(c.Request.Context(), id)
	if err != nil {
		s.respondError(c, err)
		return
	}
	out := make([]stepResponse, 0, len(steps))
	for _, st := range steps {
		out = append(out, newStepResponse(st))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getStep(c *gin.Context) {
	taskID, stepID, err := stepPath(c)
	if err != nil {
		s.respondError(c, err)
		return
	}
	if !s.taskNamespaceAllowed(c, taskID) {
		return
	}
	s.writeStep(c, taskID, stepID)
}

// writeStep answers with the step as it is stored now: GET reads it, and
// PATCH returns it after the resolution, so both show the same view.
func (s *Server) writeStep(c *gin.Context, taskID, stepID uuid.UUID) {
	st, err := s.deps.Query.GetStep(c.Request.Context(), taskID, stepID)
	if err != nil {
		s.respondError(c, err)
		return
	}
	c.JSON(http.StatusOK, newStepResponse(st))
}

// stepPath reads the task and step UUIDs of a …/workflow_steps/{step_uuid} route.
func stepPath(c *gin.Context) (taskID, stepID uuid.UUID, err error) {
	if taskID, err = pathUUID(c, "task_uuid"); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if stepID, err = pathUUID(c, "step_uuid"); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return taskID, stepID, nil
}

// resolveRequest is the PATCH body of §7.5; every field is required.
type resolveRequest struct {
	ResolutionData json.RawMessage `json:"resolution_data"`
	ResolvedBy     string          `json:"resolved_by"`
	Reason         string          `json:"reason"`
}

func (s *Server) resolveStep(c *gin.Context) {
	taskID, stepID, err := stepPath(c)
	if err != nil {
		s.respondError(c, err)
		return
	}
	body, _, err := readJSONObject(c, "resolution_data", "resolved_by", "reason")
	if err != nil {
		s.respondError(c, err)
		return
	}
	var req resolveRequest
	if err := decodeInto(body, &req); err != nil {
		s.respondError(c, err)
		return
	}
	if err := validateResolve(req); err != nil {
		s.respondError(c, err)
		return
	}
	if !s.taskNamespaceAllowed(c, taskID) {
		return
	}
	err = s.deps.Tasks.ResolveStep(c.Request.Context(), taskID, stepID, ports.ManualResolution{
		ResolutionData: req.ResolutionData, ResolvedBy: req.ResolvedBy, Reason: req.Reason})
	if err != nil {
		s.respondError(c, err)
		return
	}
	s.writeStep(c, taskID, stepID)
}

// validateResolve rejects what the step's results and transition metadata
// (jsonb) cannot store, before anything is written.
func validateResolve(r resolveRequest) error {
	if err := domain.ValidateText("resolved_by", r.ResolvedBy); err != nil {
		return err
	}
	if err := domain.ValidateText("reason", r.Reason); err != nil {
		return err
	}
	return domain.ValidateStorableJSON("resolution_data", r.ResolutionData)
}

func (s *Server) listTemplates(c *gin.Context) {
	if err := domain.ValidateText("namespace", c.Query("namespace")); err != nil {
		s.respondError(c, err)
		return
	}
	list, err := s.deps.Templates.ListTemplates(c.Request.Context(), c.Query("namespace"))
	if err != nil {
		s.respondError(c, err)
		return
	}
	out := make([]templateSummary, 0, len(list))
	for _, t := range list {
		out = append(out, newTemplateSummary(t))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getTemplate(c *gin.Context) {
	ns, name, version := c.Param("namespace"), c.Param("name"), c.Param("version")
	if err := validateTexts("namespace", ns, "name", name, "version", version); err != nil {
		s.respondError(c, err)
		return
	}
	if s.forbidNamespace(c, ns) {
		return
	}
	t, err := s.deps.Templates.GetTemplate(c.Request.Context(), ns, name, version)
	if err != nil {
		if isNotFound(err) {
			err = &ports.NotFoundError{What: "Task template not found: " + ns + "/" + name + "/" + version}
		}
		s.respondError(c, err)
		return
	}
	c.JSON(http.StatusOK, templateDetail{templateSummary: newTemplateSummary(t), Configuration: t.Configuration})
}
